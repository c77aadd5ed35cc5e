/* The prefill GEMM loops, written once for every ISA (as BLIS does): an ISA file defines its block sizes, a few vector
 * primitives, a packing block and its micro-kernel, then includes this file, which adds the blocking and packing loops
 * around them and defines
 *     gemm_any_type(int type, w, x, out, tokens, in_dim, out_stride, row_start, row_end)
 * (the matmul contract for f32/f16/bf16 weights, type: enum aya_weight_type). Weights widen to f32 exactly in the
 * packing; all math is f32 FMA.
 *
 * What the including file defines first (docs/kernels-gemm.md has the whole picture):
 *   enum { PANEL, KC, NC, MR, MC_MAX, PACK_G, VLEN };
 *       PANEL weight rows per micro-kernel tile (a multiple of PACK_G), KC inputs per k block, NC rows per weight
 *       block, MR tokens per micro-kernel tile (PACK_G >= MR >= 2, at most 8), MC_MAX tokens per x block;
 *       PACK_G the side of the packing block; VLEN the f32 lanes of gemm_vec.
 *   gemm_vec, vec_zero(), vec_load(p), vec_store(p, v), vec_widen(type, w, i), vec_fma(a, b, acc) = a * b + acc,
 *       vec_sum(v): the few-token path (below PACKED_MIN_TOKENS) is built from these.
 *   pack_block(type, src[PACK_G], live, i, dst, dst_stride): widens elements [i, i + PACK_G) of each src row (of
 *       `type`; rows from `live` on read as zeros, a constant PACK_G for weights) and stores them transposed:
 *       dst[j * dst_stride + r] = src[r][i + j]. Stores go in order of j and may write PACK_G floats per j, past the
 *       row's last lane (pack_x relies on both).
 *   kernel(panel, xp, kc, c_in, c_out, c_stride, rows, T): the micro-kernel, for T tokens (a constant, T <= MR) x PANEL
 *       rows: acc[t][r] = c_in[t * PANEL + r] (0 if c_in is NULL) + panel[k * PANEL + r] * xp[k * MR + t] over
 *       k < kc in order, one fused multiply-add per k, stored to c_out[t * c_stride + r] for r < rows.
 *
 * Loop order of the packed path (tokens >= PACKED_MIN_TOKENS), outermost first:
 *   m0: blocks of up to MC_MAX tokens; x of the block is packed once into tiles of MR (or MR - 1) tokens, [k][MR];
 *   n0: blocks of NC weight rows (LONG_NC when x's packed block is larger than L2, see below);
 *   k0: blocks of KC inputs; the nc x KC weights are widened once into [k][PANEL] panels (L2-sized block), and the
 *       next block is prefetched a few lines per micro-kernel call (its rows are far apart: too many streams for the
 *       hardware prefetcher);
 *   p:  panels of PANEL rows (stays in L1);
 *   i:  token tiles: the micro-kernel.
 * Every output is one FMA chain over k in order (partial sums go through memory between k blocks unchanged): the
 * result equals a scalar fmaf loop over k, and how rows are sliced over threads or tokens grouped never changes a bit. */
#ifndef AYA_GEMM_LOOPS_H
#define AYA_GEMM_LOOPS_H

#include "kernels_internal.h"

#ifndef AYA_ALWAYS_INLINE
#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

enum { TILE_ROWS = 16, TILE_K = 256 };  /* few-token tile: 16 rows x 256 f32 = 16 KiB, fits L1 with x */
/* Below this many tokens packing costs more than it saves (measured): the tiled dot-product path is used. */
enum { PACKED_MIN_TOKENS = 8 };
/* Long rows (down_proj's 11008 inputs: 128 tokens of packed x are 5.6 MB): each KC slice of packed x is read once per
 * row block, from L3 when x is larger than L2. Blocks of LONG_NC rows read it a quarter as often (AVX-512, down_proj
 * piece: +10-15%); with x in L2 (2048 inputs) the bigger block's buffers cost 5% instead, so it is only used above
 * LONG_X_BYTES of packed x. */
enum { LONG_NC = 4 * NC };
#define LONG_X_BYTES ((size_t) 2 << 20)

_Static_assert(MR >= 2 && MR <= 8 && (int) MR <= (int) PACK_G && (int) PANEL % (int) PACK_G == 0, "gemm_loops.h: block sizes out of range");

/* Weight w[i] widened to f32. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE float weight_at(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

/* ---- 2-7 tokens: a tile of weight rows is widened once into an L1-sized f32 buffer and reused for every 3 tokens
 * (a 4-row x 3-token block of 12 accumulators); packing would cost more than it saves. ---- */

/* R rows x T tokens of f32 dot products over k in [0, kc): rows at w + r*w_stride, tokens at x + t*x_stride.
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R and T are constants where inlined. */
AYA_ALWAYS_INLINE void dot_block(const float *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                                 float *o, size_t o_stride, int accumulate, const int R, const int T) {
    gemm_vec acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = vec_zero();
    int32_t k = 0;
    for (; k + VLEN <= kc; k += VLEN) {
        gemm_vec xv[3];
        for (int t = 0; t < T; t++) xv[t] = vec_load(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
            gemm_vec wv = vec_load(w + (size_t) r * w_stride + k);
            for (int t = 0; t < T; t++) acc[r][t] = vec_fma(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) {
            float sum = vec_sum(acc[r][t]);
            for (int32_t kk = k; kk < kc; kk++) sum += w[(size_t) r * w_stride + kk] * x[(size_t) t * x_stride + kk];
            float *dst = o + (size_t) t * o_stride + r;
            *dst = accumulate ? *dst + sum : sum;
        }
    }
}

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + VLEN <= n; k += VLEN) vec_store(dst + k, vec_widen(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = weight_at(type, w, i + (size_t) k);
}

/* R rows of the tile against the 1, 2 or 3+ tokens left (`left`). */
AYA_ALWAYS_INLINE void dot_block_tokens(int left, const float *w, const float *x, size_t x_stride, int32_t kc,
                                        float *o, size_t o_stride, int accumulate, const int R) {
    if (left >= 3)      dot_block(w, TILE_K, x, x_stride, kc, o, o_stride, accumulate, R, 3);
    else if (left == 2) dot_block(w, TILE_K, x, x_stride, kc, o, o_stride, accumulate, R, 2);
    else                dot_block(w, TILE_K, x, x_stride, kc, o, o_stride, accumulate, R, 1);
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
                int left = tokens - t;
                int32_t r = 0;
                for (; r + 4 <= rows; r += 4) {
                    dot_block_tokens(left, tile + r * TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride,
                                     accumulate, 4);
                }
                for (; r < rows; r++) {
                    dot_block_tokens(left, tile + r * TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride,
                                     accumulate, 1);
                }
            }
        }
    }
}

/* ---- 8+ tokens: the packed outer-product GEMM (loop order at the top of this file) ---- */

/* Packs rows [r0, r0 + rows) (rows <= PANEL; missing rows are zero) x inputs [k0, k0 + kc) into dst[k][PANEL]. */
AYA_ALWAYS_INLINE void pack_panel(int type, const void *w, size_t in_dim, int32_t r0, int32_t rows,
                                  int32_t k0, int32_t kc, float *dst) {
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    for (int32_t g = 0; g < PANEL; g += PACK_G) {
        int32_t k = 0;
        if (rows - g >= PACK_G) {
            const void *src[PACK_G];
            for (int i = 0; i < PACK_G; i++) {
                src[i] = (const char *) w + ((size_t) (r0 + g + i) * in_dim + (size_t) k0) * wsize;
            }
            for (; k + PACK_G <= kc; k += PACK_G) {
                pack_block(type, src, PACK_G, (size_t) k, dst + (size_t) k * PANEL + g, PANEL);
            }
        }
        for (; k < kc; k++) {
            for (int32_t i = 0; i < PACK_G; i++) {
                int32_t r = g + i;
                dst[(size_t) k * PANEL + r] = r < rows ? weight_at(type, w, (size_t) (r0 + r) * in_dim + (size_t) (k0 + k)) : 0.0f;
            }
        }
    }
}

/* Token tiles of a block of n tokens: MR tokens each, except that the last few have MR - 1 where that makes the count
 * come out even (AVX2, MR = 6: 128 = 18*6 + 4*5). A tile of MR - 1 still runs 2 * (MR - 1) independent FMA chains,
 * enough to hide the FMA latency; a tile of 2 would run at about a third of the speed. Returns the size of tile i (0
 * past the end). */
static inline int32_t tile_tokens(int32_t n, int32_t i) {
    int32_t shorts = (MR - n % MR) % MR;
    if ((MR - 1) * shorts > n) shorts = 0;        /* too few tokens: plain MRs and one shorter tile at the end */
    int32_t fulls = shorts > 0 ? (n - (MR - 1) * shorts) / MR : n / MR;
    if (i < fulls) return MR;
    if (shorts > 0) return i < fulls + shorts ? MR - 1 : 0;
    return i == fulls ? n - fulls * MR : 0;
}

/* Packs tokens [0, n) of x (row stride in_dim) into dst: per tile of T tokens, [k][MR] for k < in_dim (lanes T..MR-1
 * are zero). Tile i starts at dst + i * MR * in_dim; dst holds (n + MR) * in_dim + PACK_G floats (pack_block writes
 * PACK_G lanes per k, MR of them kept: the next k's store overwrites the rest, and the slack covers the last). */
static void pack_x(const float *x, int32_t n, int32_t in_dim, float *dst) {
    int32_t t0 = 0;
    for (int32_t i = 0; tile_tokens(n, i) > 0; i++) {
        int32_t T = tile_tokens(n, i);
        float *d = dst + (size_t) i * MR * (size_t) in_dim;
        const void *src[PACK_G];
        for (int32_t t = 0; t < PACK_G; t++) src[t] = x + (size_t) (t0 + (t < T ? t : 0)) * (size_t) in_dim;
        int32_t k = 0;
        for (; k + PACK_G <= in_dim; k += PACK_G) pack_block(AYA_WEIGHT_F32, src, T, (size_t) k, d + (size_t) k * MR, MR);
        for (; k < in_dim; k++) {
            for (int32_t t = 0; t < MR; t++) d[(size_t) k * MR + t] = t < T ? x[(size_t) (t0 + t) * (size_t) in_dim + k] : 0.0f;
        }
        t0 += T;
    }
}

/* The calling thread's buffers (native/src/scratch.c: kept between calls, freed when the thread ends). */
typedef struct {
    float *x_pack;  /* x packed in token tiles: (MC + MR) x in_dim + PACK_G */
    float *w_pack;  /* one weight block: up to LONG_NC rows x KC, widened to f32 in [k][PANEL] panels */
    float *c_pack;  /* partial sums of nc rows x MC tokens between k blocks, [tile][panel][MR][PANEL]: contiguous, so
                       they stay in L2 (the rows of out are often 8 KiB apart, which maps them all to a few sets) */
} gemm_buffers;

/* Fills b; 0 if memory runs out. */
static int thread_buffers(gemm_buffers *b, size_t x_floats, size_t c_floats, int32_t nc) {
    b->w_pack = aya_scratch(AYA_SCRATCH_GEMM_W, (size_t) nc * KC * sizeof(float));
    b->x_pack = aya_scratch(AYA_SCRATCH_GEMM_X, x_floats * sizeof(float));
    b->c_pack = aya_scratch(AYA_SCRATCH_GEMM_C, c_floats * sizeof(float));
    return b->w_pack != NULL && b->x_pack != NULL && b->c_pack != NULL;
}

/* t as a tile size of this ISA: sizes above MR never occur (tile_tokens), their cases only need to compile. */
#define GEMM_TILE(t) ((t) <= MR ? (t) : 1)

/* Runs kernel for tile size T (a constant in each case). */
AYA_ALWAYS_INLINE void kernel_any(int32_t T, const float *panel, const float *xp, int32_t kc, const float *c_in,
                                  float *c_out, size_t c_stride, int32_t rows) {
    switch (T) {
        case 8: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, GEMM_TILE(8)); break;
        case 7: kernel(panel, xp, kc, c_in, c_out, c_stride, rows, GEMM_TILE(7)); break;
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
    int32_t max_tiles = (mc_max + MR - 2) / (MR - 1);
    size_t x_floats = (size_t) (mc_max + MR) * (size_t) in_dim + PACK_G;
    int32_t NB = x_floats * sizeof(float) > LONG_X_BYTES ? LONG_NC : NC; /* rows per weight block */
    gemm_buffers buffers, *b = &buffers;
    if (!thread_buffers(b, x_floats, (size_t) max_tiles * MR * (size_t) NB, NB)) return 0;
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    for (int32_t m0 = 0; m0 < tokens; m0 += mc_max) {
        int32_t mc = tokens - m0 < mc_max ? tokens - m0 : mc_max;
        pack_x(x + (size_t) m0 * (size_t) in_dim, mc, in_dim, b->x_pack);
        int32_t tile_size[MC_MAX / (MR - 1) + 2], tiles = 0;
        while ((tile_size[tiles] = tile_tokens(mc, tiles)) > 0) tiles++;
        for (int32_t n0 = row_start; n0 < row_end; n0 += NB) {
            int32_t nc = row_end - n0 < NB ? row_end - n0 : NB;
            for (int32_t k0 = 0; k0 < in_dim; k0 += KC) {
                int32_t kc = in_dim - k0 < KC ? in_dim - k0 : KC;
                for (int32_t p = 0; p < nc; p += PANEL) {
                    int32_t rows = nc - p < PANEL ? nc - p : PANEL;
                    pack_panel(type, w, (size_t) in_dim, n0 + p, rows, k0, kc, b->w_pack + (size_t) p * KC);
                }
                /* the next block: the next KC inputs of these rows, or the first of the next rows */
                int32_t next_n0 = k0 + KC < in_dim ? n0 : n0 + NB, next_k0 = k0 + KC < in_dim ? k0 + KC : 0;
                int32_t next_nc = row_end - next_n0 < NB ? row_end - next_n0 : NB;
                int32_t next_kc = in_dim - next_k0 < KC ? in_dim - next_k0 : KC;
                aya_block_prefetcher pf = { (const char *) w + ((size_t) next_n0 * (size_t) in_dim + (size_t) next_k0) * wsize,
                                  (size_t) in_dim * wsize, (int32_t) (((size_t) next_kc * wsize + 63) / 64 + 1),
                                  next_n0 < row_end ? next_nc : 0, 0, 0, 0 };
                int32_t calls = ((nc + PANEL - 1) / PANEL) * tiles;
                int32_t per_call = (pf.rows * pf.lines_per_row + calls - 1) / calls;
                int first = k0 == 0, last = k0 + KC >= in_dim;
                for (int32_t p = 0; p < nc; p += PANEL) {
                    int32_t rows = nc - p < PANEL ? nc - p : PANEL;
                    const float *panel = b->w_pack + (size_t) p * KC;
                    int32_t t0 = 0;
                    for (int32_t i = 0; i < tiles; i++) {
                        int32_t T = tile_size[i];
                        aya_prefetch_some(&pf, per_call);
                        const float *xp = b->x_pack + ((size_t) i * (size_t) in_dim + (size_t) k0) * MR;
                        float *partial = b->c_pack + ((size_t) i * (size_t) (NB / PANEL) + (size_t) (p / PANEL)) * MR * PANEL;
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

/* The entry point's body: one copy of the loops per weight type, each with its widening inlined. */
AYA_ALWAYS_INLINE void gemm_any_type(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                    int32_t out_stride, int32_t row_start, int32_t row_end) {
    switch (type) {
        case AYA_WEIGHT_F32: gemm(AYA_WEIGHT_F32, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        case AYA_WEIGHT_F16: gemm(AYA_WEIGHT_F16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
        default: gemm(AYA_WEIGHT_BF16, w, x, out, tokens, in_dim, out_stride, row_start, row_end); break;
    }
}

#endif
