# The real-adapter path (issue 9 item 5): tests/preload/fakeusb.c, an
# LD_PRELOAD test double that makes espsim's ptys USB serial adapters to
# libserialport, and the tests that drive espgang's libserialport backend
# through it. The unit test test_port_serial runs itself under it.
add_library(egfakeusb MODULE ${PROJECT_SOURCE_DIR}/tests/preload/fakeusb.c)
target_link_libraries(egfakeusb PRIVATE ${CMAKE_DL_LIBS} pthread)
set_target_properties(egfakeusb PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests/preload)
if(TARGET test_port_serial)
  add_dependencies(test_port_serial egfakeusb)
  target_compile_definitions(test_port_serial PRIVATE EG_FAKEUSB_LIB="$<TARGET_FILE:egfakeusb>")
endif()
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.ports_preload
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/ports_preload.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.ports_preload PROPERTIES TIMEOUT 60 LABELS integration)
endif()
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.gang_serial
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/gang_serial.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.gang_serial PROPERTIES TIMEOUT 300 LABELS integration
                       FIXTURES_REQUIRED esptool_js_npm SKIP_RETURN_CODE 77)
endif()
