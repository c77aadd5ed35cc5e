/* AVX-512 (F, BW, VL, DQ) matrix products for several tokens (prefill); matmul_avx512.c calls aya_gemm_avx512 for
 * tokens > 1. Weights widen to f32 exactly and all math is f32 FMA. 8+ tokens: a packed GEMM with an 8-token x 32-row
 * micro-kernel (below). 2-7 tokens: a tile of weight rows is widened once into an L1-sized f32 buffer and reused for
 * every 3 tokens (a 4-row x 3-token block of 12 accumulators). */
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

enum { TILE_ROWS = 16, TILE_K = 256 };  /* prefill tile: 16 rows x 256 f32 = 16 KiB, fits L1 with x */

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
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R, T and type are constants where inlined. */
AYA_ALWAYS_INLINE void micro(int type, const void *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                             float *o, size_t o_stride, int accumulate, const int R, const int T) {
    __m512 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int32_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 xv[3];
        for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_ps(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
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

/* ---- Prefill of 8+ tokens: packed outer-product GEMM (the loop nest of gemm_avx2.c with a bigger tile) ----
 * Per block of up to MC_MAX tokens, x is packed once into tiles of 8 (or 7) tokens laid out [k][8]. Per NC weight rows
 * and KC inputs, the weights are widened to f32 once into [k][32] panels; every panel (16 KiB, stays in L1) meets every
 * token tile. The micro-kernel keeps 8 tokens x 32 rows in 16 zmm registers over its KC inputs and, per input, loads
 * two weight vectors and broadcasts one x per token: 16 FMAs per 10 loads, no shuffles. (On Zen 4 a zmm FMA is two
 * 256-bit halves: the peak equals AVX2's, and 16 chains are plenty to cover the latency.)
 * Every output is one FMA chain over k in order (partial sums go through memory between k blocks unchanged), so how
 * rows are sliced over threads or tokens grouped never changes a bit. */
enum { PANEL = 32, KC = 128, NC = 128, MR = 8, MC_MAX = 256 };
/* Below this many tokens packing costs more than it saves: the tiled dot-product path is used. */
enum { PACKED_MIN_TOKENS = 8 };

/* 8 weights at w[i..i+8) widened to f32 (for the 8 x 8 transposes of the packing). */
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

/* 8 x 8 transpose: v[i] (row i) becomes column i; the results are stored to dst + j * stride for j < 8. */
AYA_ALWAYS_INLINE void transpose8_store(const __m256 v[8], float *dst, size_t stride) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * stride, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * stride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * stride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * stride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * stride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * stride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * stride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Packs rows [r0, r0 + rows) (rows <= PANEL; missing rows are zero) x inputs [k0, k0 + kc) into dst[k][PANEL]. */
AYA_ALWAYS_INLINE void pack_panel(int type, const void *w, size_t in_dim, int32_t r0, int32_t rows,
                                  int32_t k0, int32_t kc, float *dst) {
    for (int32_t r8 = 0; r8 < PANEL; r8 += 8) {
        int32_t k = 0;
        if (rows - r8 >= 8) {
            for (; k + 8 <= kc; k += 8) {
                __m256 v[8];
                for (int i = 0; i < 8; i++) v[i] = load8(type, w, (size_t) (r0 + r8 + i) * in_dim + (size_t) (k0 + k));
                transpose8_store(v, dst + (size_t) k * PANEL + r8, PANEL);
            }
        }
        for (; k < kc; k++) {
            for (int32_t i = 0; i < 8; i++) {
                int32_t r = r8 + i;
                dst[(size_t) k * PANEL + r] = r < rows ? load1(type, w, (size_t) (r0 + r) * in_dim + (size_t) (k0 + k)) : 0.0f;
            }
        }
    }
}

/* Token tiles of a block of n tokens: 8 tokens each, except that the last few have 7 where that makes the count come
 * out even (60 = 4*8 + 4*7); a 7-token tile still runs 14 FMA chains. Returns the size of tile i (0 past the end). */
static inline int32_t tile_tokens(int32_t n, int32_t i) {
    int32_t sevens = (MR - n % MR) % MR;
    if (7 * sevens > n) sevens = 0;               /* too few tokens: plain 8s and one shorter tile at the end */
    int32_t eights = sevens > 0 ? (n - 7 * sevens) / MR : n / MR;
    if (i < eights) return MR;
    if (sevens > 0) return i < eights + sevens ? 7 : 0;
    return i == eights ? n - eights * MR : 0;
}

/* Packs tokens [0, n) of x (row stride in_dim) into dst: per tile of T tokens, [k][MR] for k < in_dim (lanes T..MR-1
 * are zero). Tile i starts at dst + i * MR * in_dim; dst holds (n + MR) * in_dim floats. */
static void pack_x(const float *x, int32_t n, int32_t in_dim, float *dst) {
    int32_t t0 = 0;
    for (int32_t i = 0; tile_tokens(n, i) > 0; i++) {
        int32_t T = tile_tokens(n, i);
        float *d = dst + (size_t) i * MR * (size_t) in_dim;
        const float *xt[MR];
        for (int32_t t = 0; t < MR; t++) xt[t] = x + (size_t) (t0 + (t < T ? t : 0)) * (size_t) in_dim;
        int32_t k = 0;
        for (; k + 8 <= in_dim; k += 8) {
            __m256 v[8];
            for (int32_t t = 0; t < MR; t++) v[t] = t < T ? _mm256_loadu_ps(xt[t] + k) : _mm256_setzero_ps();
            transpose8_store(v, d + (size_t) k * MR, MR);
        }
        for (; k < in_dim; k++) {
            for (int32_t t = 0; t < MR; t++) d[(size_t) k * MR + t] = t < T ? xt[t][k] : 0.0f;
        }
        t0 += T;
    }
}

/* For T tokens (T <= MR, a constant) x 32 rows: acc[t][r] = c_in[t][r] (0 if c_in is NULL) + sum over k < kc of
 * panel[k][r] * xp[k][t], stored to c_out[t * c_stride + r] for r < rows. c_in is a [MR][32] tile of partial sums. */
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
    float *x_pack;  /* x packed in token tiles: (MC + MR) x in_dim */
    float *w_pack;  /* one weight block: NC rows x KC, widened to f32 in [k][32] panels */
    float *c_pack;  /* partial sums of NC rows x MC tokens between k blocks, [tile][panel][MR][32], contiguous */
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
        case 8: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 8); break;
        case 7: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, 7); break;
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
    int32_t max_tiles = (mc_max + 6) / 7;
    gemm_buffers buffers, *b = &buffers;
    if (!thread_buffers(b, (size_t) (mc_max + MR) * (size_t) in_dim, (size_t) max_tiles * MR * NC)) return 0;
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    for (int32_t m0 = 0; m0 < tokens; m0 += mc_max) {
        int32_t mc = tokens - m0 < mc_max ? tokens - m0 : mc_max;
        pack_x(x + (size_t) m0 * (size_t) in_dim, mc, in_dim, b->x_pack);
        int32_t tile_size[MC_MAX / 7 + 2], tiles = 0;
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

void aya_gemm_avx512(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                     int32_t out_stride, int32_t row_start, int32_t row_end) {
    switch (type) {
        case AYA_WEIGHT_F32: gemm(AYA_WEIGHT_F32, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        case AYA_WEIGHT_F16: gemm(AYA_WEIGHT_F16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        default: gemm(AYA_WEIGHT_BF16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
    }
}
