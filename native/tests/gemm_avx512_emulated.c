/* The AVX-512 GEMM source on SIMDe's emulated intrinsics, for test_avx512_emulated (see matmul_avx512_emulated.c). */
#define aya_gemm_avx512 aya_gemm_avx512_emulated  /* not the library's own symbol */
#include "simde_avx512.h"

#define AYA_EMULATE_AVX512
#include "../src/x86/gemm_avx512.c"
