# The station dashboard (src/dash.c) end to end: tests/tools/fakestation
# plays a fixed, seeded shift into it, and headless Chromium (Debian's
# chromium, driven by playwright-core from npm) opens the page, checks the
# tiles and counters against what the fake station sent, takes screenshots
# at three moments (<build>/dashboard-shots/) and checks that the page asked
# nothing of any other server.
add_executable(fakestation ${PROJECT_SOURCE_DIR}/tests/tools/fakestation.c)
target_link_libraries(fakestation PRIVATE espgang_core)

find_program(EG_NODE_EXECUTABLE node)
if(NOT EG_NODE_EXECUTABLE)
  message(WARNING "node not found: integration.dashboard_browser will fail; install Node.js >= 20.10")
  set(EG_NODE_EXECUTABLE node)
endif()
add_test(NAME integration.dashboard_browser
         COMMAND ${EG_NODE_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/browser/dashboard.test.mjs
                 $<TARGET_FILE:fakestation> ${PROJECT_BINARY_DIR}/dashboard-shots)
# playwright-core comes from the top-level package-lock.json, which the
# esptool_js_npm fixture installs.
set_tests_properties(integration.dashboard_browser PROPERTIES
  TIMEOUT 120 LABELS integration FIXTURES_REQUIRED esptool_js_npm)
