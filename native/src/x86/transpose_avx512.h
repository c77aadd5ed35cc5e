/* A 16 x 16 transpose of u32 in zmm registers, for the AVX-512 GEMM's packing (gemm_avx512.c) and the bf16-activation
 * GEMM (bf16act_avx512.c). The including file provides the intrinsics (immintrin.h, or SIMDe in the emulated tests). */
#ifndef AYA_TRANSPOSE_AVX512_H
#define AYA_TRANSPOSE_AVX512_H

#ifndef AYA_ALWAYS_INLINE
#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* out[j] = element j of each of the 16 vectors in[0..15] (lane i from in[i]): a 16 x 16 transpose of u32 in four
 * rounds of shuffles (32-bit, 64-bit, then 128-bit lanes twice), 64 shuffles. */
AYA_ALWAYS_INLINE void transpose_16x16(const __m512i in[16], __m512i out[16]) {
    __m512i a[16], b[16], c[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_epi32(in[i], in[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(in[i], in[i + 1]);
    }
    /* b[4g + k], 128-bit lane L: element 4L + k of vectors 4g..4g+3 */
    for (int g = 0; g < 16; g += 4) {
        b[g] = _mm512_unpacklo_epi64(a[g], a[g + 2]);
        b[g + 1] = _mm512_unpackhi_epi64(a[g], a[g + 2]);
        b[g + 2] = _mm512_unpacklo_epi64(a[g + 1], a[g + 3]);
        b[g + 3] = _mm512_unpackhi_epi64(a[g + 1], a[g + 3]);
    }
    /* c[k], c[4 + k]: lanes 0 and 2 (1 and 3) of vectors 0-3, 4-7; c[8 + k], c[12 + k]: the same of vectors 8-11, 12-15 */
    for (int k = 0; k < 4; k++) {
        c[k] = _mm512_shuffle_i32x4(b[k], b[4 + k], 0x88);
        c[4 + k] = _mm512_shuffle_i32x4(b[k], b[4 + k], 0xdd);
        c[8 + k] = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0x88);
        c[12 + k] = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0xdd);
    }
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_shuffle_i32x4(c[k], c[8 + k], 0x88);
        out[8 + k] = _mm512_shuffle_i32x4(c[k], c[8 + k], 0xdd);
        out[4 + k] = _mm512_shuffle_i32x4(c[4 + k], c[12 + k], 0x88);
        out[12 + k] = _mm512_shuffle_i32x4(c[4 + k], c[12 + k], 0xdd);
    }
}

#endif
