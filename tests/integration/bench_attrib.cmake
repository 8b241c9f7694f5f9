# bench_attrib: the benchmark's attribution arithmetic (tools/bench/attrib.mjs:
# wire, chip, adapter, waiting and its legs, gaps) on a made-up unit in the
# formats espgang's --timing-log and espsim's --event-log write. No clock is
# read: the benchmark itself prints figures and is never a test.
find_program(EG_NODE_EXECUTABLE node)
if(NOT EG_NODE_EXECUTABLE)
  message(WARNING "node not found: integration.bench_attrib will fail; install Node.js >= 20.10")
  set(EG_NODE_EXECUTABLE node)
endif()
add_test(NAME integration.bench_attrib COMMAND ${EG_NODE_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tools/bench/attrib.test.mjs)
set_tests_properties(integration.bench_attrib PROPERTIES TIMEOUT 60 LABELS integration)
