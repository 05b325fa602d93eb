#ifndef C_FUZZ_DRIVER_H
#define C_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver as a library call (exported by libclang_rt.fuzzer since LLVM 12). The fuzz
/// targets call it from their own entry point instead of relying on libFuzzer's `main`; see
/// Fuzz/FuzzSupport/FuzzSupport.swift for why.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
