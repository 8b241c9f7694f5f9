# espsim CLI integration test: 2 devices behind ptys and TCP, SYNC/READ_REG
# over both, SIGTERM cleanup (tests/integration/espsim/espsim_cli_test.c).
if(TARGET espsim)
  add_executable(espsim_cli_test ${CMAKE_CURRENT_LIST_DIR}/espsim/espsim_cli_test.c)
  target_link_libraries(espsim_cli_test PRIVATE espgang_core)
  add_test(NAME integration.espsim_cli COMMAND espsim_cli_test $<TARGET_FILE:espsim>)
  set_tests_properties(integration.espsim_cli PROPERTIES TIMEOUT 60 LABELS integration)
endif()
