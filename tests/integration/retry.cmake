# Reruns from the log: flash --retry-failed by slot and --by-mac, and a
# station with --retry-failed --by-mac, with two stations and two manifests
# sharing one database; changed images refused (retry.sh).
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.retry
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/retry.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.retry PROPERTIES TIMEOUT 240 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
