/* fuzz_stubfile.c - libFuzzer target: eg_stub_load_mem on arbitrary bytes.
 * Besides the sanitizers it checks the loader's contract: on success text is
 * present and fits the 32-bit address space (data too), on failure nothing is
 * left to free and the message is one non-empty line naming the file.
 * Build: CC=clang cmake -DEG_FUZZ=ON ...; make fuzz_stubfile
 * Run:   ./tests/fuzz/fuzz_stubfile -dict=../tests/fuzz/fuzz_stubfile.dict \
 *          corpus-dir ../tests/fuzz/corpus/stubfile */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stubfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  eg_stub s;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_stub_load_mem(&s, (const char *)data, size, "fuzz.json", &f);
  if (e == EG_OK) {
    if (!s.text || s.text_len == 0) __builtin_trap();
    if ((uint64_t)s.text_start + s.text_len > (uint64_t)UINT32_MAX + 1) __builtin_trap();
    if (s.data && (s.data_len == 0 || (uint64_t)s.data_start + s.data_len > (uint64_t)UINT32_MAX + 1)) __builtin_trap();
    if (!s.data && s.data_len != 0) __builtin_trap();
    /* Touch every decoded byte so ASan checks the lengths. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < s.text_len; i++) x ^= s.text[i];
    for (size_t i = 0; i < s.data_len; i++) x ^= s.data[i];
    (void)x;
    eg_stub_free(&s);
  } else {
    if (e != EG_STUB_FORMAT && e != EG_NOMEM) __builtin_trap();
    if (s.text || s.data || f.code != e || !f.msg[0] || strchr(f.msg, '\n') || !strstr(f.msg, "fuzz.json"))
      __builtin_trap();
  }
  return 0;
}
