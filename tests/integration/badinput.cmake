# The bad-input catalogue (tests/integration/badinput/cases.txt): every way
# of handing espgang something wrong, each under a timeout, asserting the
# exit status, the one-line message, and that no simulated flash byte and no
# log row changed. Needs no flasher stub (the rack runs ROM only).
if(TARGET espsim AND TARGET espgang AND TARGET mkimage)
  add_test(NAME integration.badinput
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/badinput/run.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.badinput PROPERTIES TIMEOUT 180 LABELS integration)
endif()
