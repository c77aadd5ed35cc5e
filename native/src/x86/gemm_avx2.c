/* AVX2 + FMA + F16C matrix products for several tokens (prefill). Weights widen to f32 exactly (bf16: shift; f16:
 * vcvtph2ps); all math is f32 FMA. 8+ tokens: a packed GEMM with a 6-token x 16-row outer-product micro-kernel (below);
 * 2-7 tokens use a smaller tile and a 4-row x 3-token dot-product block, where packing would cost more than it saves.
 * matmul_avx2.c calls aya_gemm_avx2 for tokens > 1. */
#include <immintrin.h>
#include <stdlib.h>

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

/* ---- Prefill: packed outer-product GEMM (the BLIS loop nest) ----
 * Per block of up to MC_MAX tokens, x is packed once into tiles of 6 (or 5) tokens laid out [k][6], so the micro-kernel
 * broadcasts its tokens from one contiguous stream. Then per NC weight rows and KC inputs, the weights are widened to
 * f32 once into [k][16] panels (L2-sized block) and every panel (16 KiB, stays in L1) meets every token tile.
 * The micro-kernel keeps a tile of T tokens x 16 rows in 2T registers over its KC inputs and, per input, loads two
 * weight vectors and broadcasts one x per token: 12 FMAs per 8 loads for T = 6. The next weight block is prefetched
 * a few lines per micro-kernel call (its rows are far apart: too many streams for the hardware prefetcher).
 * Every output is one FMA chain over k in order (partial sums go through memory between k blocks unchanged), so how
 * rows are sliced over threads or tokens grouped never changes a bit. */
enum { PANEL = 16, KC = 256, NC = 128, MR = 6, MC_MAX = 256 };
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

/* Token tiles of a block of n tokens: 6 tokens each, except that the last few have 5 where that makes the count come
 * out even (128 = 18*6 + 4*5). A 5-token tile still runs 10 independent FMA chains, enough to hide the FMA latency;
 * a tile of 2 would run at about a third of the speed. Returns the size of tile i (0 past the end). */
static inline int32_t tile_tokens(int32_t n, int32_t i) {
    int32_t fives = (MR - n % MR) % MR;
    if (5 * fives > n) fives = 0;                 /* too few tokens: plain 6s and one shorter tile at the end */
    int32_t sixes = fives > 0 ? (n - 5 * fives) / MR : n / MR;
    if (i < sixes) return MR;
    if (fives > 0) return i < sixes + fives ? 5 : 0;
    return i == sixes ? n - sixes * MR : 0;
}

/* Packs tokens [0, n) of x (row stride in_dim) into dst: per tile of T tokens, [k][MR] for k < in_dim (lanes T..MR-1
 * are zero). Tile i starts at dst + i * MR * in_dim; dst holds (n + MR) * in_dim + 8 floats. */
static void pack_x(const float *x, int32_t n, int32_t in_dim, float *dst) {
    int32_t t0 = 0;
    for (int32_t i = 0; tile_tokens(n, i) > 0; i++) {
        int32_t T = tile_tokens(n, i);
        float *d = dst + (size_t) i * MR * (size_t) in_dim;
        const float *xt[MR];
        for (int32_t t = 0; t < MR; t++) xt[t] = x + (size_t) (t0 + (t < T ? t : 0)) * (size_t) in_dim;
        __m256 keep[MR];  /* all ones for the tile's tokens, zero for the padding lanes */
        for (int32_t t = 0; t < MR; t++) keep[t] = _mm256_castsi256_ps(_mm256_set1_epi32(t < T ? -1 : 0));
        int32_t k = 0;
        for (; k + 8 <= in_dim; k += 8) {
            /* 6 tokens x 8 inputs, transposed as 8 x 8 with two zero rows; each store of 8 writes one k's 6 tokens,
             * and its last two lanes are overwritten by the next store (the 8 floats of slack cover the last one) */
            __m256 v[8];
            for (int32_t t = 0; t < MR; t++) v[t] = _mm256_and_ps(_mm256_loadu_ps(xt[t] + k), keep[t]);
            v[6] = _mm256_setzero_ps();
            v[7] = _mm256_setzero_ps();
            __m256 t0v = _mm256_unpacklo_ps(v[0], v[1]), t1v = _mm256_unpackhi_ps(v[0], v[1]);
            __m256 t2v = _mm256_unpacklo_ps(v[2], v[3]), t3v = _mm256_unpackhi_ps(v[2], v[3]);
            __m256 t4v = _mm256_unpacklo_ps(v[4], v[5]), t5v = _mm256_unpackhi_ps(v[4], v[5]);
            __m256 t6v = _mm256_unpacklo_ps(v[6], v[7]), t7v = _mm256_unpackhi_ps(v[6], v[7]);
            __m256 u0 = _mm256_shuffle_ps(t0v, t2v, 0x44), u1 = _mm256_shuffle_ps(t0v, t2v, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1v, t3v, 0x44), u3 = _mm256_shuffle_ps(t1v, t3v, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4v, t6v, 0x44), u5 = _mm256_shuffle_ps(t4v, t6v, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5v, t7v, 0x44), u7 = _mm256_shuffle_ps(t5v, t7v, 0xEE);
            float *o = d + (size_t) k * MR;
            _mm256_storeu_ps(o + 0 * MR, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(o + 1 * MR, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(o + 2 * MR, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(o + 3 * MR, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(o + 4 * MR, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(o + 5 * MR, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(o + 6 * MR, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(o + 7 * MR, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k < in_dim; k++) {
            for (int32_t t = 0; t < MR; t++) d[(size_t) k * MR + t] = t < T ? xt[t][k] : 0.0f;
        }
        t0 += T;
    }
}

/* For T tokens (T <= MR, a constant) x 16 rows: acc[t][r] = c_in[t][r] (0 if c_in is NULL) + sum over k < kc of
 * panel[k][r] * xp[k][t], stored to c_out[t * c_stride + r] for r < rows. c_in is a [MR][16] tile of partial sums. */
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

/* Software prefetch of one weight block (rows of lines_per_row cache lines from base, row_bytes apart), spread over
 * the micro-kernel calls of the block before it. */
typedef struct { const char *base; size_t row_bytes; int32_t lines_per_row, rows, row, line; } prefetcher;

static inline void prefetch_some(prefetcher *p, int32_t count) {
    for (; count > 0 && p->row < p->rows; count--) {
        _mm_prefetch(p->base + (size_t) p->row * p->row_bytes + (size_t) p->line * 64, _MM_HINT_T1);
        if (++p->line == p->lines_per_row) {
            p->line = 0;
            p->row++;
        }
    }
}

/* The calling thread's buffers (native/src/scratch.c: kept between calls, freed when the thread ends). */
typedef struct {
    float *x_pack;  /* x packed in token tiles: (MC + MR) x in_dim + 8 */
    float *w_pack;  /* one weight block: NC rows x KC, widened to f32 in [k][16] panels */
    float *c_pack;  /* partial sums of NC rows x MC tokens between k blocks, [tile][panel][MR][16]: contiguous, so
                       they stay in L2 (the rows of out are often 8 KiB apart, which maps them all to a few sets) */
} gemm_buffers;

/* Fills b; 0 if memory runs out. */
static int thread_buffers(gemm_buffers *b, size_t x_floats, size_t c_floats) {
    b->w_pack = aya_scratch(AYA_SCRATCH_GEMM_W, (size_t) NC * KC * sizeof(float));
    b->x_pack = aya_scratch(AYA_SCRATCH_GEMM_X, x_floats * sizeof(float));
    b->c_pack = aya_scratch(AYA_SCRATCH_GEMM_C, c_floats * sizeof(float));
    return b->w_pack != NULL && b->x_pack != NULL && b->c_pack != NULL;
}

/* Runs kernel for tile size T (a constant in each case). */
AYA_ALWAYS_INLINE void kernel_any(int32_t T, const float *panel, const float *xp, int32_t kc, const float *c_in,
                                  float *c_out, size_t c_stride, int32_t rows) {
    switch (T) {
        case 6: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 6); break;
        case 5: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 5); break;
        case 4: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 4); break;
        case 3: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 3); break;
        case 2: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 2); break;
        default: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 1); break;
    }
}

/* Returns 0 if the buffers could not be allocated (nothing written then). */
AYA_ALWAYS_INLINE int matmul_packed(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                    int32_t out_stride, int32_t row_start, int32_t row_end) {
    int32_t blocks = (tokens + MC_MAX - 1) / MC_MAX;  /* token blocks of equal size, so the last is not a sliver */
    int32_t mc_max = (tokens + blocks - 1) / blocks;
    int32_t max_tiles = (mc_max + 4) / 5;
    gemm_buffers buffers, *b = &buffers;
    if (!thread_buffers(b, (size_t) (mc_max + MR) * (size_t) in_dim + 8, (size_t) max_tiles * MR * NC)) return 0;
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    for (int32_t m0 = 0; m0 < tokens; m0 += mc_max) {
        int32_t mc = tokens - m0 < mc_max ? tokens - m0 : mc_max;
        pack_x(x + (size_t) m0 * (size_t) in_dim, mc, in_dim, b->x_pack);
        int32_t tile_size[MC_MAX / 5 + 2], tiles = 0;
        while ((tile_size[tiles] = tile_tokens(mc, tiles)) > 0) tiles++;
        for (int32_t n0 = row_start; n0 < row_end; n0 += NC) {
            int32_t nc = row_end - n0 < NC ? row_end - n0 : NC;
            for (int32_t k0 = 0; k0 < in_dim; k0 += KC) {
                int32_t kc = in_dim - k0 < KC ? in_dim - k0 : KC;
                for (int32_t p = 0; p < nc; p += PANEL) {
                    int32_t rows = nc - p < PANEL ? nc - p : PANEL;
                    pack_panel(type, w, (size_t) in_dim, n0 + p, rows, k0, kc, b->w_pack + (size_t) p * KC);
                }
                /* the next block: the next KC inputs of these rows, or the first of the next rows */
                int32_t next_n0 = k0 + KC < in_dim ? n0 : n0 + NC, next_k0 = k0 + KC < in_dim ? k0 + KC : 0;
                int32_t next_nc = row_end - next_n0 < NC ? row_end - next_n0 : NC;
                int32_t next_kc = in_dim - next_k0 < KC ? in_dim - next_k0 : KC;
                prefetcher pf = { (const char *) w + ((size_t) next_n0 * (size_t) in_dim + (size_t) next_k0) * wsize,
                                  (size_t) in_dim * wsize, (int32_t) (((size_t) next_kc * wsize + 63) / 64 + 1),
                                  next_n0 < row_end ? next_nc : 0, 0, 0 };
                int32_t calls = ((nc + PANEL - 1) / PANEL) * tiles;
                int32_t per_call = (pf.rows * pf.lines_per_row + calls - 1) / calls;
                int first = k0 == 0, last = k0 + KC >= in_dim;
                for (int32_t p = 0; p < nc; p += PANEL) {
                    int32_t rows = nc - p < PANEL ? nc - p : PANEL;
                    const float *panel = b->w_pack + (size_t) p * KC;
                    int32_t t0 = 0;
                    for (int32_t i = 0; i < tiles; i++) {
                        int32_t T = tile_size[i];
                        prefetch_some(&pf, per_call);
                        const float *xp = b->x_pack + ((size_t) i * (size_t) in_dim + (size_t) k0) * MR;
                        float *partial = b->c_pack + ((size_t) i * (NC / PANEL) + (size_t) (p / PANEL)) * MR * PANEL;
                        if (last) {
                            float *o = out + (size_t) (m0 + t0) * (size_t) out_stride + (size_t) (n0 + p);
                            kernel_any(T, panel, xp, kc, first ? NULL : partial, o, (size_t) out_stride, rows);
                        } else {
                            kernel_any(T, panel, xp, kc, first ? NULL : partial, partial, PANEL, PANEL);
                        }
                        t0 += T;
                    }
                }
            }
        }
    }
    return 1;
}

AYA_ALWAYS_INLINE void gemm(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens >= PACKED_MIN_TOKENS && matmul_packed(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end)) {
        return;
    }
    matmul_tiled(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_gemm_avx2(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end) {
    switch (type) {
        case AYA_WEIGHT_F32: gemm(AYA_WEIGHT_F32, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        case AYA_WEIGHT_F16: gemm(AYA_WEIGHT_F16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        default: gemm(AYA_WEIGHT_BF16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
    }
}
