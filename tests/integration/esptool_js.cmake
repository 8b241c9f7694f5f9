# esptool-js (Espressif's JavaScript flasher, npm, pinned in the top-level
# package-lock.json) driven from Node.js against espsim over TCP: chip
# detection, MAC, flash id, compressed writes with and without the
# stub, MD5 verification, readFlash, eraseFlash, for every simulated chip
# (ESP32, S2, S3, C2, C3, C5, C6, C61, H2, P4, ESP8266), then the flash files
# compared byte for byte (tests/esptool-js/espsim-esptool-js.test.mjs).
#
# integration.esptool_js.npm runs `npm ci` at the repository root when
# node_modules lacks the locked esptool-js (a fresh clone in CI); it is a
# fixture, so tests that read node_modules can require it
# (FIXTURES_REQUIRED esptool_js_npm) instead of racing its `npm ci`.
if(TARGET espsim)
  find_program(EG_NODE_EXECUTABLE node)
  if(NOT EG_NODE_EXECUTABLE)
    # Still register the tests: without Node they fail ("could not find
    # executable node") instead of silently not running.
    message(WARNING "node not found: integration.esptool_js will fail; install Node.js >= 20.10")
    set(EG_NODE_EXECUTABLE node)
  endif()

  add_test(NAME integration.esptool_js.npm
           COMMAND ${EG_NODE_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/esptool-js/deps.mjs)
  set_tests_properties(integration.esptool_js.npm PROPERTIES
    TIMEOUT 300 LABELS integration FIXTURES_SETUP esptool_js_npm RESOURCE_LOCK node_modules)

  add_test(NAME integration.esptool_js
           COMMAND ${EG_NODE_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/esptool-js/espsim-esptool-js.test.mjs
                   $<TARGET_FILE:espsim>)
  # The script stops itself (and espsim) after 150 s of device work.
  set_tests_properties(integration.esptool_js PROPERTIES
    TIMEOUT 240 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
