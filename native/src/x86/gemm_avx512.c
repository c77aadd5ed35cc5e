/* AVX-512 (F, BW, VL, DQ) matrix products for several tokens (prefill): the loops of gemm_loops.h around an 8-token x
 * 32-row outer-product micro-kernel, with a 16 x 16 (zmm) packing block. matmul_avx512.c calls
 * aya_gemm_avx512 for tokens > 1. */
#ifdef AYA_EMULATE_AVX512
/* Test build only (see CMakeLists.txt): the same code on SIMDe's portable AVX-512, so CPUs without AVX-512 run it. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include <stdlib.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Block sizes (gemm_loops.h): a panel of 32 rows x KC inputs is 16 KiB and stays in L1. Tiles of 8 tokens: 16
 * accumulators, 16 FMAs per 10 loads, no shuffles; 16 chains are plenty to cover the latency. (On Zen 4 a zmm FMA is
 * two 256-bit halves and the peak equals AVX2's; Zen 5 has full-width FMAs: 216-225 GFLOP/s per core vs AVX2's
 * 108-112, docs/performance-native.md section 17.) */
enum { PANEL = 32, KC = 128, NC = 128, MR = 8, MC_MAX = 256 };

typedef __m512 gemm_vec;
enum { VLEN = 16 };
AYA_ALWAYS_INLINE gemm_vec vec_zero(void) { return _mm512_setzero_ps(); }
AYA_ALWAYS_INLINE gemm_vec vec_load(const float *p) { return _mm512_loadu_ps(p); }
AYA_ALWAYS_INLINE void vec_store(float *p, gemm_vec v) { _mm512_storeu_ps(p, v); }
AYA_ALWAYS_INLINE gemm_vec vec_fma(gemm_vec a, gemm_vec b, gemm_vec acc) { return _mm512_fmadd_ps(a, b, acc); }
AYA_ALWAYS_INLINE float vec_sum(gemm_vec v) { return _mm512_reduce_add_ps(v); }

/* 16 weights at w[i..i+16) widened to f32 exactly. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE gemm_vec vec_widen(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return _mm512_loadu_ps((const float *) w + i);
    }
    __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) w + i));
    if (type == AYA_WEIGHT_F16) {
        return _mm512_cvtph_ps(h);
    }
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#include "transpose_avx512.h"

/* The packing block (contract in gemm_loops.h): 16 rows x 16 elements, widened (vec_widen) and transposed in zmm
 * registers. Per element two thirds of the shuffles and half the loads, shifts and stores of gemm_pack_avx2.h's 8 x 8
 * block (the weight panels' packing was 7-8% of a 128-token call with it). */
enum { PACK_G = 16 };
AYA_ALWAYS_INLINE void pack_block(int type, const void *const src[16], int live, size_t i, float *dst, size_t dst_stride) {
    __m512i rows[16], cols[16];
    for (int r = 0; r < 16; r++) rows[r] = r < live ? _mm512_castps_si512(vec_widen(type, src[r], i)) : _mm512_setzero_si512();
    transpose_16x16(rows, cols);
    for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (size_t) j * dst_stride, _mm512_castsi512_ps(cols[j]));
}

/* The micro-kernel (contract in gemm_loops.h): T tokens x 32 rows in 2T zmm registers over kc inputs; per input it
 * loads two weight vectors and broadcasts one x per token. */
AYA_ALWAYS_INLINE void kernel(const float *panel, const float *xp, int32_t kc, const float *c_in,
                              float *c_out, size_t c_stride, int32_t rows, const int T) {
    __m512 acc[MR][2];
    for (int t = 0; t < T; t++) {
        acc[t][0] = c_in != NULL ? _mm512_load_ps(c_in + t * PANEL) : _mm512_setzero_ps();
        acc[t][1] = c_in != NULL ? _mm512_load_ps(c_in + t * PANEL + 16) : _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (int32_t k = 0; k < kc; k++) {
        __m512 w0 = _mm512_load_ps(panel + (size_t) k * PANEL);
        __m512 w1 = _mm512_load_ps(panel + (size_t) k * PANEL + 16);
        for (int t = 0; t < T; t++) {
            __m512 xb = _mm512_set1_ps(xp[(size_t) k * MR + t]);
            acc[t][0] = _mm512_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    for (int t = 0; t < T; t++) {
        if (rows == PANEL) {
            _mm512_storeu_ps(c_out + (size_t) t * c_stride, acc[t][0]);
            _mm512_storeu_ps(c_out + (size_t) t * c_stride + 16, acc[t][1]);
        } else {
            float tmp[PANEL];
            _mm512_storeu_ps(tmp, acc[t][0]);
            _mm512_storeu_ps(tmp + 16, acc[t][1]);
            memcpy(c_out + (size_t) t * c_stride, tmp, (size_t) rows * sizeof(float));
        }
    }
}

#include "gemm_loops.h"

void aya_gemm_avx512(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                     int32_t out_stride, int32_t row_start, int32_t row_end) {
    gemm_any_type(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
