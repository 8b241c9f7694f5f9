# Station mode (espgang station) against espsim racks whose boards are
# seated and pulled through espsim's control socket: a shift of 208 units
# over 16 slots with every row, event and counter checked
# (station/shift.mjs).
if(TARGET espsim AND TARGET espgang)
  find_program(EG_NODE_EXECUTABLE node)
  if(NOT EG_NODE_EXECUTABLE)
    set(EG_NODE_EXECUTABLE node)
  endif()
  add_test(NAME integration.station_shift
           COMMAND ${EG_NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/station/shift.mjs ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.station_shift PROPERTIES
    TIMEOUT 240 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
