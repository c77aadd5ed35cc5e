/* The AVX-512 matmul source on SIMDe's emulated intrinsics, for test_avx512_emulated. A separate file on purpose: CMake
 * gives matmul_avx512.c itself -mavx512f, which would make SIMDe emit the real instructions. */
#define aya_gemm_avx512 aya_gemm_avx512_emulated  /* the emulated GEMM (gemm_avx512_emulated.c), not the library's */
#include "simde_avx512.h"

#define AYA_EMULATE_AVX512
#define aya_table_avx512 aya_table_avx512_emulated
/* the quantized entries are tested through quant_avx512_emulated.c; here they must not reach real AVX-512 code */
#define aya_matmul_q8_0_avx512 aya_matmul_q8_0_avx2
#define aya_matmul_q4_0_avx512 aya_matmul_q4_0_avx2
#include "../src/x86/matmul_avx512.c"
