/* AVX-512 (F, BW, VL, DQ) matrix products for several tokens (prefill). Weights widen to f32 exactly and all math is
 * f32 FMA. A tile of weight rows is widened once into an L1-sized f32 buffer and reused for every 3 tokens (a 4-row x
 * 3-token block of 12 accumulators). matmul_avx512.c calls aya_gemm_avx512 for tokens > 1. */
#ifdef AYA_EMULATE_AVX512
/* Test build only (see CMakeLists.txt): the same code on SIMDe's portable AVX-512, so CPUs without AVX-512 run it. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { TILE_ROWS = 16, TILE_K = 256 };  /* prefill tile: 16 rows x 256 f32 = 16 KiB, fits L1 with x */
enum { PREFETCH_BYTES = 512 };

/* 16 weights at w[i..i+16) widened to f32. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE __m512 load16(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return _mm512_loadu_ps((const float *) w + i);
    }
    __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) w + i));
    if (type == AYA_WEIGHT_F16) {
        return _mm512_cvtph_ps(h);
    }
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AYA_ALWAYS_INLINE float load1(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

AYA_ALWAYS_INLINE float hsum(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

/* R rows x T tokens of dot products over k in [0, kc): rows at w + r*w_stride (type), tokens at x + t*x_stride.
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R, T, type and prefetch are constants where inlined. */
AYA_ALWAYS_INLINE void micro(int type, const void *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                             float *o, size_t o_stride, int accumulate, int prefetch, const int R, const int T) {
    __m512 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    int32_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 xv[3];
        for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_ps(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
            if (prefetch) {
                _mm_prefetch((const char *) w + ((size_t) r * w_stride + k) * wsize + PREFETCH_BYTES, _MM_HINT_T0);
            }
            __m512 wv = load16(type, w, (size_t) r * w_stride + k);
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) {
            float sum = hsum(acc[r][t]);
            for (int32_t kk = k; kk < kc; kk++) {
                sum += load1(type, w, (size_t) r * w_stride + kk) * x[(size_t) t * x_stride + kk];
            }
            float *dst = o + (size_t) t * o_stride + r;
            *dst = accumulate ? *dst + sum : sum;
        }
    }
}

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(dst + k, load16(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

AYA_ALWAYS_INLINE void matmul_tiled(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                    int32_t out_stride, int32_t row_start, int32_t row_end) {
    float tile[TILE_ROWS * TILE_K] __attribute__((aligned(64)));
    for (int32_t r0 = row_start; r0 < row_end; r0 += TILE_ROWS) {
        int32_t rows = row_end - r0 < TILE_ROWS ? row_end - r0 : TILE_ROWS;
        for (int32_t k0 = 0; k0 < in_dim; k0 += TILE_K) {
            int32_t kc = in_dim - k0 < TILE_K ? in_dim - k0 : TILE_K;
            int accumulate = k0 > 0;
            for (int32_t r = 0; r < rows; r++) {
                widen_row(type, w, (size_t) (r0 + r) * (size_t) in_dim + (size_t) k0, kc, tile + r * TILE_K);
            }
            for (int32_t t = 0; t < tokens; t += 3) {
                const float *xt = x + (size_t) t * (size_t) in_dim + (size_t) k0;
                float *ot = out + (size_t) t * (size_t) out_stride + (size_t) r0;
                int left = tokens - t; /* 1, 2 or 3+ tokens in this step */
                int32_t r = 0;
                for (; r + 4 <= rows; r += 4) {
                    const float *wt = tile + r * TILE_K;
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 4, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 4, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 4, 1);
                }
                for (; r < rows; r++) {
                    const float *wt = tile + r * TILE_K;
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 1, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 1, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 0, 1, 1);
                }
            }
        }
    }
}

void aya_gemm_avx512(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                     int32_t out_stride, int32_t row_start, int32_t row_end) {
    switch (type) {
        case AYA_WEIGHT_F32: matmul_tiled(AYA_WEIGHT_F32, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        case AYA_WEIGHT_F16: matmul_tiled(AYA_WEIGHT_F16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        default: matmul_tiled(AYA_WEIGHT_BF16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
    }
}
