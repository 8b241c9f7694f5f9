# espsim integration tests: the CLI with 2 devices behind ptys and TCP,
# SYNC/READ_REG over both, SIGTERM cleanup (espsim/espsim_cli_test.c); the
# RFC 2217 server with esptool's reset sequences in real time
# (espsim/espsim_rfc2217_test.c); USB-Serial/JTAG and USB-OTG ports and
# --pty-lines over ptys in real time (espsim/espsim_usb_test.c); and the
# timing model's calibration
# against published esptool figures (virtual time, deterministic, ~3 s).
if(TARGET espsim)
  add_executable(espsim_cli_test ${CMAKE_CURRENT_LIST_DIR}/espsim/espsim_cli_test.c)
  target_link_libraries(espsim_cli_test PRIVATE espgang_wire)
  add_test(NAME integration.espsim_cli COMMAND espsim_cli_test $<TARGET_FILE:espsim>)
  set_tests_properties(integration.espsim_cli PROPERTIES TIMEOUT 60 LABELS integration)

  add_executable(espsim_rfc2217_test ${CMAKE_CURRENT_LIST_DIR}/espsim/espsim_rfc2217_test.c)
  target_link_libraries(espsim_rfc2217_test PRIVATE espgang_wire)
  add_test(NAME integration.espsim_rfc2217 COMMAND espsim_rfc2217_test $<TARGET_FILE:espsim>)
  set_tests_properties(integration.espsim_rfc2217 PROPERTIES TIMEOUT 60 LABELS integration)
endif()
if(TARGET espsim)
  add_executable(espsim_usb_test ${CMAKE_CURRENT_LIST_DIR}/espsim/espsim_usb_test.c)
  target_link_libraries(espsim_usb_test PRIVATE espgang_wire)
  add_test(NAME integration.espsim_usb COMMAND espsim_usb_test $<TARGET_FILE:espsim>)
  set_tests_properties(integration.espsim_usb PROPERTIES TIMEOUT 60 LABELS integration)
endif()
if(TARGET espsim_bench)
  add_test(NAME bench.espsim_calib COMMAND espsim_bench calib)
  set_tests_properties(bench.espsim_calib PROPERTIES TIMEOUT 120 LABELS bench)
endif()
