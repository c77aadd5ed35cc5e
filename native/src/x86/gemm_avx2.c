/* AVX2 + FMA + F16C matrix products for several tokens (prefill): the loops of gemm_loops.h around a 6-token x
 * 16-row outer-product micro-kernel, with the 8 x 8 packing block of gemm_pack_avx2.h. matmul_avx2.c calls
 * aya_gemm_avx2 for tokens > 1. */
#include <immintrin.h>
#include <stdlib.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Block sizes (gemm_loops.h): a panel of 16 rows x KC inputs is 16 KiB and stays in L1; NC x KC = 128 KiB of widened
 * weights per block stays in L2. Tiles of 6 tokens: 12 accumulators + 2 weight vectors + 1 broadcast of 16 ymm. */
enum { PANEL = 16, KC = 256, NC = 128, MR = 6, MC_MAX = 256 };

#include "gemm_pack_avx2.h"

typedef __m256 gemm_vec;
enum { VLEN = 8 };
AYA_ALWAYS_INLINE gemm_vec vec_zero(void) { return _mm256_setzero_ps(); }
AYA_ALWAYS_INLINE gemm_vec vec_load(const float *p) { return _mm256_loadu_ps(p); }
AYA_ALWAYS_INLINE void vec_store(float *p, gemm_vec v) { _mm256_storeu_ps(p, v); }
AYA_ALWAYS_INLINE gemm_vec vec_widen(int type, const void *w, size_t i) { return load8(type, w, i); }
AYA_ALWAYS_INLINE gemm_vec vec_fma(gemm_vec a, gemm_vec b, gemm_vec acc) { return _mm256_fmadd_ps(a, b, acc); }
AYA_ALWAYS_INLINE float vec_sum(gemm_vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The micro-kernel (contract in gemm_loops.h): T tokens x 16 rows in 2T registers over kc inputs; per input it loads
 * two weight vectors and broadcasts one x per token: 12 FMAs per 8 loads for T = 6. */
AYA_ALWAYS_INLINE void kernel(const float *panel, const float *xp, int32_t kc, const float *c_in,
                              float *c_out, size_t c_stride, int32_t rows, const int T) {
    __m256 acc[MR][2];
    for (int t = 0; t < T; t++) {
        acc[t][0] = c_in != NULL ? _mm256_load_ps(c_in + t * PANEL) : _mm256_setzero_ps();
        acc[t][1] = c_in != NULL ? _mm256_load_ps(c_in + t * PANEL + 8) : _mm256_setzero_ps();
    }
#pragma GCC unroll 4
    for (int32_t k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(panel + (size_t) k * PANEL);
        __m256 w1 = _mm256_load_ps(panel + (size_t) k * PANEL + 8);
        for (int t = 0; t < T; t++) {
            __m256 xb = _mm256_broadcast_ss(xp + (size_t) k * MR + t);
            acc[t][0] = _mm256_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    for (int t = 0; t < T; t++) {
        if (rows == PANEL) {
            _mm256_storeu_ps(c_out + (size_t) t * c_stride, acc[t][0]);
            _mm256_storeu_ps(c_out + (size_t) t * c_stride + 8, acc[t][1]);
        } else {
            float tmp[PANEL];
            _mm256_storeu_ps(tmp, acc[t][0]);
            _mm256_storeu_ps(tmp + 8, acc[t][1]);
            memcpy(c_out + (size_t) t * c_stride, tmp, (size_t) rows * sizeof(float));
        }
    }
}

#include "gemm_loops.h"

void aya_gemm_avx2(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end) {
    gemm_any_type(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
