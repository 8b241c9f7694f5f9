# Station mode (espgang station) against espsim racks whose boards are
# seated and pulled through espsim's control socket (station/driver.mjs):
# a shift of 208 units over 16 slots with every row, event and counter
# checked (station/shift.mjs); and the station's own dashboard (--http) in
# headless Chromium during a 96-unit shift, tiles and counters checked
# against the log at three moments, screenshots in
# <build>/station-shots/ (station/dashboard.mjs); and a station on RFC 2217
# ports that reset (station/rfc2217.mjs).
if(TARGET espsim AND TARGET espgang)
  find_program(EG_NODE_EXECUTABLE node)
  if(NOT EG_NODE_EXECUTABLE)
    set(EG_NODE_EXECUTABLE node)
  endif()
  add_test(NAME integration.station_shift
           COMMAND ${EG_NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/station/shift.mjs ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR})
  add_test(NAME integration.station_dashboard
           COMMAND ${EG_NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/station/dashboard.mjs ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/station-shots)
  add_test(NAME integration.station_rfc2217
           COMMAND ${EG_NODE_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/station/rfc2217.mjs ${PROJECT_BINARY_DIR}
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.station_shift integration.station_dashboard integration.station_rfc2217 PROPERTIES
    TIMEOUT 240 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
