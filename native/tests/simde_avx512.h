/* SIMDe's portable AVX-512 plus the intrinsics SIMDe 0.7 lacks: for the *_avx512_emulated.c test sources. */
#ifndef AYA_SIMDE_AVX512_H
#define AYA_SIMDE_AVX512_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>

#include "kernels_internal.h"

/* The intrinsics SIMDe 0.7 lacks, written lane by lane. */
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
#ifndef _mm512_cvtepi16_epi32
static inline simde__m512i _mm512_cvtepi16_epi32(simde__m256i v) {
    int16_t in[16];
    int32_t out[16];
    simde_mm256_storeu_si256((simde__m256i *) in, v);
    for (int i = 0; i < 16; i++) out[i] = in[i];
    return simde_mm512_loadu_si512(out);
}
#endif
#ifndef _mm512_cvtepi32_ps
static inline simde__m512 _mm512_cvtepi32_ps(simde__m512i v) {
    int32_t in[16];
    float out[16];
    simde_mm512_storeu_si512(in, v);
    for (int i = 0; i < 16; i++) out[i] = (float) in[i];
    return simde_mm512_loadu_ps(out);
}
#endif
#ifndef _mm512_mask3_fnmadd_ps
static inline simde__m512 _mm512_mask3_fnmadd_ps(simde__m512 a, simde__m512 b, simde__m512 c, simde__mmask16 k) {
    return simde_mm512_mask_mov_ps(c, k, simde_mm512_fnmadd_ps(a, b, c));
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

#endif
