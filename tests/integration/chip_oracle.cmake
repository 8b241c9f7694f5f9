# chip_oracle: the chip table's identity decoding (src/chips.c) against an
# oracle we did not write: esptool-js 0.7.0's own target classes (npm,
# pinned in package-lock.json), fed the same READ_REG values through a fake
# loader (tests/esptool-js/chip-oracle.mjs). tests/tools/chipdecode is the C
# side. The disagreements where the table follows esptool instead are listed,
# with sources, in the script.
add_executable(chipdecode ${PROJECT_SOURCE_DIR}/tests/tools/chipdecode.c)
target_link_libraries(chipdecode PRIVATE espgang_core)

find_program(EG_NODE_EXECUTABLE node)
if(NOT EG_NODE_EXECUTABLE)
  message(WARNING "node not found: integration.chip_oracle will fail; install Node.js >= 20.10")
  set(EG_NODE_EXECUTABLE node)
endif()
add_test(NAME integration.chip_oracle
         COMMAND ${EG_NODE_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/esptool-js/chip-oracle.mjs $<TARGET_FILE:chipdecode>)
# node_modules comes from the esptool_js_npm fixture (esptool_js.cmake) when
# it exists; the script also runs deps.mjs itself, under the same lock.
set_tests_properties(integration.chip_oracle PROPERTIES
  TIMEOUT 120 LABELS integration FIXTURES_REQUIRED esptool_js_npm RESOURCE_LOCK node_modules)
