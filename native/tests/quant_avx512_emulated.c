/* The AVX-512 VNNI quantized kernels on SIMDe's emulated intrinsics, for test_avx512_emulated (a separate file for the
 * same reason as matmul_avx512_emulated.c). Exported as aya_matmul_q*_0_avx512vnni_emulated. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>

#define aya_matmul_q8_0_avx512vnni aya_matmul_q8_0_avx512vnni_emulated
#define aya_matmul_q4_0_avx512vnni aya_matmul_q4_0_avx512vnni_emulated
#define aya_matmul_q4_k_avx512oct aya_matmul_q4_k_avx512oct_emulated
#define aya_matmul_q6_k_avx512oct aya_matmul_q6_k_avx512oct_emulated
#include "kernels_internal.h"

/* The intrinsics SIMDe 0.7 lacks, written lane by lane. */
#ifndef _mm512_cvtepi32_ps
static inline simde__m512 _mm512_cvtepi32_ps(simde__m512i v) {
    int32_t in[16];
    float out[16];
    simde_mm512_storeu_si512(in, v);
    for (int i = 0; i < 16; i++) out[i] = (float) in[i];
    return simde_mm512_loadu_ps(out);
}
#endif
#ifndef _mm512_cvtph_ps
static inline simde__m512 _mm512_cvtph_ps(simde__m256i v) {
    uint16_t in[16];
    float out[16];
    simde_mm256_storeu_si256(in, v);
    for (int i = 0; i < 16; i++) out[i] = aya_f16_to_f32(in[i]);
    return simde_mm512_loadu_ps(out);
}
#endif
#ifndef _mm512_cvtepi16_epi32
static inline simde__m512i _mm512_cvtepi16_epi32(simde__m256i v) {
    int16_t in[16];
    int32_t out[16];
    simde_mm256_storeu_si256(in, v);
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
#include "../src/x86/quant_avx512.c"
