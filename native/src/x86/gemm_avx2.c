/* AVX2 + FMA + F16C matrix products for several tokens (prefill). Weights widen to f32 exactly (bf16: shift; f16:
 * vcvtph2ps); all math is f32 FMA. 8+ tokens pack 64 weight rows x 256 inputs as f32 once and run a 6-token x 16-row
 * outer-product micro-kernel over them for every token; 2-7 tokens use a smaller tile and a 4-row x 3-token dot-product
 * block, where packing would cost more than it saves. matmul_avx2.c calls aya_gemm_avx2 for tokens > 1. */
#include <immintrin.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { TILE_ROWS = 16, TILE_K = 256 };  /* prefill tile: 16 rows x 256 f32 = 16 KiB, fits L1 with x */

/* 8 weights at w[i..i+8) widened to f32. type is a compile-time constant at every call site. */
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

AYA_ALWAYS_INLINE float load1(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

AYA_ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* R rows x T tokens of dot products over k in [0, kc): rows at w + r*w_stride (type), tokens at x + t*x_stride.
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R, T and type are constants where inlined. */
AYA_ALWAYS_INLINE void micro(int type, const void *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                             float *o, size_t o_stride, int accumulate, const int R, const int T) {
    __m256 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    int32_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 xv[3];
        for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
            __m256 wv = load8(type, w, (size_t) r * w_stride + k);
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
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
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, load8(type, w, i + (size_t) k));
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
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 1);
                }
                for (; r < rows; r++) {
                    const float *wt = tile + r * TILE_K;
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 1);
                }
            }
        }
    }
}

/* ---- Prefill: packed outer-product GEMM ----
 * A block of PACK_ROWS weight rows x PACK_K inputs is widened to f32 once and stored transposed in panels of 16 rows
 * ([k][16]), then reused for every token. The micro-kernel keeps a 6-token x 16-row block of outputs in 12 registers
 * and, per input k, loads two weight vectors and broadcasts one x per token: 12 FMAs per 8 loads, no horizontal sums.
 * Every output is one FMA chain over k in order (accumulators reload the partial sums between k blocks), so how rows
 * are sliced over threads or tokens grouped never changes a bit. */
enum { PANEL = 16, PACK_K = 256, PACK_ROWS = 64, MICRO_TOKENS = 6 };
/* Below this many tokens packing costs more than it saves (measured): the tiled dot-product path is used. */
enum { PACKED_MIN_TOKENS = 8 };

/* Packs rows [r0, r0 + rows) (rows <= PANEL; missing rows are zero) x inputs [k0, k0 + kc) into dst[k][PANEL]. */
AYA_ALWAYS_INLINE void pack_panel(int type, const void *w, size_t in_dim, int32_t r0, int32_t rows,
                                  int32_t k0, int32_t kc, float *dst) {
    for (int32_t half = 0; half < PANEL; half += 8) {
        int32_t k = 0;
        if (rows - half >= 8) {
            /* 8 rows x 8 inputs: widen, transpose in registers, store 8 k-rows of 8 weights */
            for (; k + 8 <= kc; k += 8) {
                __m256 v[8];
                for (int i = 0; i < 8; i++) {
                    v[i] = load8(type, w, (size_t) (r0 + half + i) * in_dim + (size_t) (k0 + k));
                }
                __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
                __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
                __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
                __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                float *d = dst + (size_t) k * PANEL + half;
                _mm256_store_ps(d + 0 * PANEL, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_store_ps(d + 1 * PANEL, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_store_ps(d + 2 * PANEL, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_store_ps(d + 3 * PANEL, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_store_ps(d + 4 * PANEL, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_store_ps(d + 5 * PANEL, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_store_ps(d + 6 * PANEL, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_store_ps(d + 7 * PANEL, _mm256_permute2f128_ps(u3, u7, 0x31));
            }
        }
        for (; k < kc; k++) {
            for (int32_t i = 0; i < 8; i++) {
                int32_t r = half + i;
                dst[(size_t) k * PANEL + r] = r < rows ? load1(type, w, (size_t) (r0 + r) * in_dim + (size_t) (k0 + k)) : 0.0f;
            }
        }
    }
}

/* out[t][0..rows) (+)= sum over k < kc of panel[k][r] * x[t][k] for T tokens (T <= MICRO_TOKENS, a constant). */
AYA_ALWAYS_INLINE void micro_panel(const float *panel, const float *x, size_t x_stride, int32_t kc,
                                   float *o, size_t o_stride, int32_t rows, int accumulate, const int T) {
    __m256 acc[MICRO_TOKENS][2];
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), lane);
    __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - 8), lane);
    for (int t = 0; t < T; t++) {
        if (accumulate && rows == PANEL) {
            acc[t][0] = _mm256_loadu_ps(o + (size_t) t * o_stride);
            acc[t][1] = _mm256_loadu_ps(o + (size_t) t * o_stride + 8);
        } else if (accumulate) {  /* masked moves only for a partial panel: they are slow on AMD */
            acc[t][0] = _mm256_maskload_ps(o + (size_t) t * o_stride, mask0);
            acc[t][1] = _mm256_maskload_ps(o + (size_t) t * o_stride + 8, mask1);
        } else {
            acc[t][0] = _mm256_setzero_ps();
            acc[t][1] = _mm256_setzero_ps();
        }
    }
    const float *xt[MICRO_TOKENS];
    for (int t = 0; t < T; t++) xt[t] = x + (size_t) t * x_stride;
    for (int32_t k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(panel + (size_t) k * PANEL);
        __m256 w1 = _mm256_load_ps(panel + (size_t) k * PANEL + 8);
        for (int t = 0; t < T; t++) {
            __m256 xb = _mm256_broadcast_ss(xt[t] + k);
            acc[t][0] = _mm256_fmadd_ps(w0, xb, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(w1, xb, acc[t][1]);
        }
    }
    for (int t = 0; t < T; t++) {
        if (rows == PANEL) {
            _mm256_storeu_ps(o + (size_t) t * o_stride, acc[t][0]);
            _mm256_storeu_ps(o + (size_t) t * o_stride + 8, acc[t][1]);
        } else {
            _mm256_maskstore_ps(o + (size_t) t * o_stride, mask0, acc[t][0]);
            _mm256_maskstore_ps(o + (size_t) t * o_stride + 8, mask1, acc[t][1]);
        }
    }
}

AYA_ALWAYS_INLINE void matmul_packed(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                     int32_t out_stride, int32_t row_start, int32_t row_end) {
    float pack[PACK_ROWS * PACK_K] __attribute__((aligned(64)));
    for (int32_t rb = row_start; rb < row_end; rb += PACK_ROWS) {
        int32_t block_rows = row_end - rb < PACK_ROWS ? row_end - rb : PACK_ROWS;
        for (int32_t k0 = 0; k0 < in_dim; k0 += PACK_K) {
            int32_t kc = in_dim - k0 < PACK_K ? in_dim - k0 : PACK_K;
            int accumulate = k0 > 0;
            for (int32_t p = 0; p < block_rows; p += PANEL) {
                int32_t rows = block_rows - p < PANEL ? block_rows - p : PANEL;
                pack_panel(type, w, (size_t) in_dim, rb + p, rows, k0, kc, pack + (size_t) p * PACK_K);
            }
            for (int32_t t = 0; t < tokens; t += MICRO_TOKENS) {
                const float *xt = x + (size_t) t * (size_t) in_dim + (size_t) k0;
                int left = tokens - t;
                for (int32_t p = 0; p < block_rows; p += PANEL) {
                    int32_t rows = block_rows - p < PANEL ? block_rows - p : PANEL;
                    const float *panel = pack + (size_t) p * PACK_K;
                    float *ot = out + (size_t) t * (size_t) out_stride + (size_t) (rb + p);
                    switch (left >= MICRO_TOKENS ? MICRO_TOKENS : left) {
                        case 6: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 6); break;
                        case 5: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 5); break;
                        case 4: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 4); break;
                        case 3: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 3); break;
                        case 2: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 2); break;
                        default: micro_panel(panel, xt, (size_t) in_dim, kc, ot, (size_t) out_stride, rows, accumulate, 1); break;
                    }
                }
            }
        }
    }
}


AYA_ALWAYS_INLINE void gemm(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens < PACKED_MIN_TOKENS) matmul_tiled(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    else matmul_packed(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_gemm_avx2(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end) {
    switch (type) {
        case AYA_WEIGHT_F32: gemm(AYA_WEIGHT_F32, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        case AYA_WEIGHT_F16: gemm(AYA_WEIGHT_F16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        default: gemm(AYA_WEIGHT_BF16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
    }
}
