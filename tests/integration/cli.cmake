# esptool's workflows with espgang in place of esptool, against espsim.
if(TARGET espsim AND TARGET espgang)
  foreach(transport pty tcp rfc2217)
    foreach(mode stub rom)
      add_test(NAME integration.cli_${transport}_${mode}
               COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/cli_workflows.sh
                       ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${transport} ${mode})
      set_tests_properties(integration.cli_${transport}_${mode} PROPERTIES TIMEOUT 300 LABELS integration
                           FIXTURES_REQUIRED esptool_js_npm)
    endforeach()
  endforeach()
endif()
