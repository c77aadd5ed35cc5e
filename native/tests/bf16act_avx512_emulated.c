/* The AVX512_BF16 matmul source on SIMDe's emulated intrinsics (vdpbf16ps included), for test_bf16act_emulated. A
 * separate file on purpose: CMake gives bf16act_avx512.c itself -mavx512bf16, which would make SIMDe emit the real
 * instructions. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "kernels_internal.h"

/* The intrinsic SIMDe 0.7 lacks, lane by lane. */
#ifndef _mm512_reduce_add_ps
static inline float _mm512_reduce_add_ps(simde__m512 v) {
    float lanes[16], sum = 0.0f;
    simde_mm512_storeu_ps(lanes, v);
    for (int i = 0; i < 16; i++) sum += lanes[i];
    return sum;
}
#endif

#define AYA_EMULATE_AVX512
#define aya_matmul_bf16_bf16_avx512bf16 aya_matmul_bf16_bf16_avx512bf16_emulated
#include "../src/x86/bf16act_avx512.c"
