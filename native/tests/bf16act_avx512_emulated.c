/* The AVX512_BF16 matmul source on SIMDe's emulated intrinsics (vdpbf16ps included), for test_bf16act_emulated. A
 * separate file on purpose: CMake gives bf16act_avx512.c itself -mavx512bf16, which would make SIMDe emit the real
 * instructions. */
#define aya_matmul_bf16_bf16_avx512bf16 aya_matmul_bf16_bf16_avx512bf16_emulated /* not the library's own symbol */
#include "simde_avx512.h"

#define AYA_EMULATE_AVX512
#include "../src/x86/bf16act_avx512.c"
