# The gang run (espgang flash MANIFEST) against espsim racks, with the
# SQLite log checked row by row; kill -9 and SIGINT mid-run.
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.gang_rack16
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/gang.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  add_test(NAME integration.gang_crash
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/gang_crash.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.gang_rack16 integration.gang_crash PROPERTIES
                       TIMEOUT 300 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.gang_rfc2217
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/gang_rfc2217.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.gang_rfc2217 PROPERTIES TIMEOUT 300 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.gang_dberror
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/gang_dberror.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.gang_dberror PROPERTIES TIMEOUT 120 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
