/* The AVX-512 matmul source on SIMDe's emulated intrinsics, for test_avx512_emulated. A separate file on purpose: CMake
 * gives matmul_avx512.c itself -mavx512f, which would make SIMDe emit the real instructions. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "kernels_internal.h"

/* The three intrinsics SIMDe 0.7 lacks, written lane by lane. */
#ifndef _mm512_cvtph_ps
static inline simde__m512 _mm512_cvtph_ps(simde__m256i h) {
    uint16_t in[16];
    float out[16];
    simde_mm256_storeu_si256((simde__m256i *) in, h);
    for (int i = 0; i < 16; i++) out[i] = aya_f16_to_f32(in[i]);
    return simde_mm512_loadu_ps(out);
}
#endif
#ifndef _mm512_cvtepu16_epi32
static inline simde__m512i _mm512_cvtepu16_epi32(simde__m256i h) {
    uint16_t in[16];
    uint32_t out[16];
    simde_mm256_storeu_si256((simde__m256i *) in, h);
    for (int i = 0; i < 16; i++) out[i] = in[i];
    return simde_mm512_loadu_si512(out);
}
#endif
#ifndef _mm512_reduce_add_ps
static inline float _mm512_reduce_add_ps(simde__m512 v) {
    float lanes[16], sum = 0.0f;
    simde_mm512_storeu_ps(lanes, v);
    for (int i = 0; i < 16; i++) sum += lanes[i];
    return sum;
}
#endif

#define AYA_EMULATE_AVX512
#define aya_table_avx512 aya_table_avx512_emulated
/* the quantized entries are tested through quant_avx512_emulated.c; here they must not reach real AVX-512 code */
#define aya_matmul_q8_0_avx512 aya_matmul_q8_0_avx2
#define aya_matmul_q4_0_avx512 aya_matmul_q4_0_avx2
#include "../src/x86/matmul_avx512.c"
