# manifest_schema: schema/manifest.schema.json and the C loader judge every
# manifest alike (config/*.yaml and tests/data/manifest/{valid,invalid}).
# tests/schema/run.sh installs ajv + yaml with `npm ci` (committed
# package-lock.json) when missing; without Node.js the test is skipped (77).
add_executable(manifest_check ${PROJECT_SOURCE_DIR}/tests/schema/manifest_check.c)
target_link_libraries(manifest_check PRIVATE espgang_core)
add_test(NAME integration.manifest_schema
         COMMAND sh ${PROJECT_SOURCE_DIR}/tests/schema/run.sh $<TARGET_FILE:manifest_check>)
set_tests_properties(integration.manifest_schema PROPERTIES
  TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS integration)
