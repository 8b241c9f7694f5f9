# The chip family end to end: a gang run over a mixed simulated rack (every
# chip, USB-Serial/JTAG and USB-OTG ports, Secure Download Mode, flash
# encryption), skip_flashed, and esptool's commands on several chips.
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.family
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/family.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.family PROPERTIES TIMEOUT 300 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
