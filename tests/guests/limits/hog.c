/* Grows linear memory 1 MiB at a time until the host refuses; prints the final size. */
#include <stdio.h>

int main(void) {
  while (__builtin_wasm_memory_grow(0, 16) != (__SIZE_TYPE__)-1) {
  }
  printf("%zu MiB\n", __builtin_wasm_memory_size(0) / 16);
  return 0;
}
