/* AVX2 helpers shared by the AVX2 op files (and reused by AVX-512 for 8-wide tails). */
#ifndef AYA_SIMD_AVX2_H
#define AYA_SIMD_AVX2_H

#include <immintrin.h>
#include <math.h>

static inline __attribute__((always_inline)) float aya_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) float aya_hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x for 8 floats, within ~2 ulp of expf (Cephes expf: range reduction by ln 2, degree-6 polynomial).
 * Like expf: 0 below -87.3 (where f32 underflows), +inf above 88.72, NaN stays NaN (max/min take x as second operand,
 * which they return when it is NaN). */
static inline __attribute__((always_inline)) __m256 aya_exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f);
    __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  /* ln 2 split in two for exactness */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n by building the exponent; n reaches 128 near the top of the range, where 2^n = 2^127 * 2 */
    __m256 n1 = _mm256_min_ps(n, _mm256_set1_ps(127.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n1), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(scale)),
                             _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_sub_ps(n, n1)));
    e = _mm256_andnot_ps(underflow, e);
    return _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), overflow);
}

#endif
