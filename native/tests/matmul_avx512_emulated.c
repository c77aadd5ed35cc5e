/* The AVX-512 matmul source on SIMDe's emulated intrinsics, for test_avx512_emulated. A separate file on purpose: CMake
 * gives matmul_avx512.c itself -mavx512f, which would make SIMDe emit the real instructions. */
#define aya_gemm_avx512 aya_gemm_avx512_emulated  /* the emulated GEMM (gemm_avx512_emulated.c), not the library's */
#include "simde_avx512.h"

#define AYA_EMULATE_AVX512
#define aya_table_avx512 aya_table_avx512_emulated
#include "../src/x86/matmul_avx512.c"
