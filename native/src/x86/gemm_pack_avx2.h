/* The packing block of gemm_loops.h for AVX2 (+ F16C; the AVX-512 GEMM has its own 16 x 16): 8 rows x 8 elements,
 * widened to f32 and transposed in registers. The including file provides the intrinsics (immintrin.h, or SIMDe in
 * the emulated test build). */
#ifndef AYA_GEMM_PACK_AVX2_H
#define AYA_GEMM_PACK_AVX2_H

#include "kernels_internal.h"

#ifndef AYA_ALWAYS_INLINE
#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

enum { PACK_G = 8 };

/* 8 weights at w[i..i+8) widened to f32 exactly (bf16: shift; f16: vcvtph2ps). type is a compile-time constant at
 * every call site. */
AYA_ALWAYS_INLINE __m256 load8(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return _mm256_loadu_ps((const float *) w + i);
    }
    __m128i h = _mm_loadu_si128((const __m128i *) ((const uint16_t *) w + i));
    if (type == AYA_WEIGHT_F16) {
        return _mm256_cvtph_ps(h);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* dst[j * dst_stride + r] = src[r][i + j] for r, j < 8 (rows from `live` on are zeros); eight stores of 8 floats,
 * j in order. */
AYA_ALWAYS_INLINE void pack_block(int type, const void *const src[8], int live, size_t i, float *dst, size_t dst_stride) {
    __m256 v[8];
    for (int r = 0; r < 8; r++) v[r] = r < live ? load8(type, src[r], i) : _mm256_setzero_ps();
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

#endif
