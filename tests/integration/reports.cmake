# The traceability reports over real espsim runs (two stations, two
# manifests, one and several databases): every view in CSV and JSON against
# the databases, and the HTML report in headless Chromium.
if(TARGET espsim AND TARGET espgang)
  add_test(NAME integration.reports
           COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/reports.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.reports PROPERTIES
                       TIMEOUT 300 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
endif()
