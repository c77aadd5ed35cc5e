/* Internal: the decode (one token, or a few: a step of a batch of decoding sequences) matrix-vector loop, written once
 * for every ISA and weight type, BLIS style: this file owns the row blocking, the token blocking and the prefetch; the
 * file that includes it supplies only the micro-kernel below, which widens one row's weights for a step and
 * multiply-adds them into accumulators. Each output's sum depends only on its row and token, in the same order
 * whatever the blocking, so neither the blocking, the number of tokens nor the split of rows over threads changes a bit.
 *
 * Define before including (the micro-kernel; type is an enum aya_weight_type, a compile-time constant where inlined):
 *   AYA_MV_STEP                inputs per step of the main loop
 *   AYA_MV_NARROW              inputs per step after it (one vector; equal to AYA_MV_STEP when there is no such step)
 *   AYA_MV_TOKENS              tokens (1..4) sharing one widening of the weights when there are several
 *   AYA_MV_TOKEN_ROWS          rows per block when there are several tokens (registers: rows x tokens accumulators)
 *   aya_mv_x                   the activations a step reads (e.g. float, or bf16 pairs)
 *   aya_mv_acc                 one (row, token)'s accumulators
 *   aya_mv_xs                  one step's activations of one token
 *   aya_mv_w                   one step's weights of one row, widened
 *   aya_mv_zero()                          -> aya_mv_acc
 *   aya_mv_load_x(x, k)                    -> aya_mv_xs        activations [k, k + AYA_MV_STEP)
 *   aya_mv_load_w(type, row, k)            -> aya_mv_w         row[k, k + AYA_MV_STEP), widened
 *   aya_mv_fma(acc, w, xs)                 -> aya_mv_acc       adds w . xs
 *   aya_mv_narrow(acc, type, row, k, x)    -> aya_mv_acc       adds row[k, k + AYA_MV_NARROW) . x[k, ...)
 *   aya_mv_finish(acc, type, row, k, x, in_dim) -> float       the sum, adding inputs [k, in_dim)
 *   AYA_MV_DECODE_AHEAD        0, or how far ahead (bytes) decode (one token) prefetches each of its row streams
 *   AYA_MV_ALIGN               0, or the alignment in bytes the main loop's weight loads want (a line: 64): then each
 *                              row's first inputs up to that alignment (fewer than AYA_MV_STEP) are its head, and
 *   aya_mv_head(acc, type, row, h, x)      -> aya_mv_acc       adds row[0, h) . x[0, h), h < AYA_MV_STEP
 * where row points at the row's first weight. Then aya_matvec(type, w, x, out, in_dim, row_start, row_end) sets
 * out[r] = row r . x for r in [row_start, row_end), and aya_matvec_tokens does it for several tokens.
 *
 * Optionally (f32 activations), bf16 weights against split activations: each whole step of x (after the rows' head)
 * stored as its even inputs, then its odd ones, so that a 32-bit lane of loaded weights widens with one shift (the
 * even weight, its low half) and one and (the odd one, its high half), instead of a zero-extension (a shuffle) and a
 * shift. The micro-kernel then reads type AYA_BF16_SPLIT that way, and defines
 *   AYA_MV_SPLIT 1, aya_mv_split_step(src, dst)   dst[0, AYA_MV_STEP) = the split of src[0, AYA_MV_STEP)
 * and aya_matvec_few(type, w, x, out, tokens, ...) runs bf16 weights on a split copy of x. */
#ifndef AYA_MATVEC_LOOP_H
#define AYA_MATVEC_LOOP_H

#include "kernels_internal.h"

#ifndef AYA_MV_ALIGN
#define AYA_MV_ALIGN 0
#endif
#ifndef AYA_MV_DECODE_AHEAD
#define AYA_MV_DECODE_AHEAD 0 /* bytes: decode prefetches each row this far ahead of its reads (0: not at all) */
#endif
#ifndef AYA_MV_HEAD_MULTIPLE
#define AYA_MV_HEAD_MULTIPLE 1 /* a head must be a multiple of this many inputs (2: bf16 pairs) */
#endif

enum { AYA_MV_ROWS = 4 }; /* rows streamed at once: 4 independent memory streams and 4-8 FMA chains */

/* The row and token loops of a block run fully unrolled, so that the accumulators live in registers. */
#define AYA_MV_UNROLL _Pragma("GCC unroll 16")

static inline size_t aya_mv_weight_bytes(int type) {
    return type == AYA_WEIGHT_F32 ? 4 : 2;
}

/* The head of the rows of w (in_dim inputs each, every row as aligned as the first): how many inputs come before the
 * main loop's loads are AYA_MV_ALIGN-aligned. Weights are mmapped from files whose tensors sit at any offset (the
 * real safetensors and GGUF files put them at 32 or 56 bytes past a line), and a load that crosses a cache line
 * costs more than the rest of the step. 0 when rows differ in alignment or are too short. */
static inline size_t aya_mv_aligned_head(int type, const void *w, int32_t in_dim) {
#if AYA_MV_ALIGN > 0
    size_t wsize = aya_mv_weight_bytes(type), row_bytes = (size_t) in_dim * wsize;
    size_t past = (uintptr_t) w % AYA_MV_ALIGN, head_bytes = past == 0 ? 0 : AYA_MV_ALIGN - past;
    if (row_bytes % AYA_MV_ALIGN != 0 || head_bytes % wsize != 0) return 0;
    size_t head = head_bytes / wsize;
    if (head % AYA_MV_HEAD_MULTIPLE != 0) return 0;
    return head + AYA_MV_STEP <= (size_t) in_dim ? head : 0;
#else
    (void) type; (void) w; (void) in_dim;
    return 0;
#endif
}

/* R rows (a constant) from w, in_dim weights each and row_stride weights apart, dotted with T tokens (a constant) of
 * x, x_stride apart, into out[t * out_stride + r * out_step]. Each step of each row is widened once for all T tokens;
 * the main loop starts after the rows' head (aya_mv_aligned_head). pf, when not NULL, is where row 0 of a group of
 * rows further on starts: its R rows (same stride) are prefetched at the offset being read. */
static inline __attribute__((always_inline)) void aya_mv_block(int type, const void *w, size_t in_dim, size_t head,
                                                               const aya_mv_x *x, size_t x_stride, float *out,
                                                               size_t out_stride, const char *pf, const int R,
                                                               const int T, size_t row_stride, size_t out_step) {
    const size_t wsize = aya_mv_weight_bytes(type);
    aya_mv_acc acc[AYA_MV_ROWS][4];
    AYA_MV_UNROLL
    for (int r = 0; r < R; r++)
        AYA_MV_UNROLL
        for (int t = 0; t < T; t++) acc[r][t] = aya_mv_zero();
#if AYA_MV_ALIGN > 0
    if (head > 0) {
        AYA_MV_UNROLL
        for (int r = 0; r < R; r++)
            AYA_MV_UNROLL
            for (int t = 0; t < T; t++) {
                acc[r][t] = aya_mv_head(acc[r][t], type, (const char *) w + (size_t) r * row_stride * wsize, head,
                                        x + (size_t) t * x_stride);
            }
    }
#endif
    size_t k = head;
    for (; k + AYA_MV_STEP <= in_dim; k += AYA_MV_STEP) {
        if (pf != NULL) {
            AYA_MV_UNROLL
            for (int r = 0; r < R; r++) {
                for (size_t b = 0; b < AYA_MV_STEP * wsize; b += 64) { /* every cache line this step reads */
                    __builtin_prefetch(pf + ((size_t) r * row_stride + k) * wsize + b, 0, 3);
                }
                /* and once per row the line of its end, past the main loop: the narrow steps and the tail read it,
                 * and when rows are not line-aligned it also holds the next row's head */
                if (k == head) __builtin_prefetch(pf + ((size_t) r * row_stride + in_dim) * wsize - 1, 0, 3);
            }
        }
        if (T == 1) { /* widen each row's step where it is used: fewer live registers (AVX2 has 16) */
            aya_mv_xs xs = aya_mv_load_x(x, k);
            AYA_MV_UNROLL
            for (int r = 0; r < R; r++) {
                acc[r][0] = aya_mv_fma(acc[r][0], aya_mv_load_w(type, (const char *) w + (size_t) r * row_stride * wsize, k), xs);
            }
            continue;
        }
        aya_mv_w wr[AYA_MV_ROWS];
        AYA_MV_UNROLL
        for (int r = 0; r < R; r++) wr[r] = aya_mv_load_w(type, (const char *) w + (size_t) r * row_stride * wsize, k);
        AYA_MV_UNROLL
        for (int t = 0; t < T; t++) {
            aya_mv_xs xs = aya_mv_load_x(x + (size_t) t * x_stride, k);
            AYA_MV_UNROLL
            for (int r = 0; r < R; r++) acc[r][t] = aya_mv_fma(acc[r][t], wr[r], xs);
        }
    }
    for (; k + AYA_MV_NARROW <= in_dim; k += AYA_MV_NARROW) {
        AYA_MV_UNROLL
        for (int r = 0; r < R; r++) {
            AYA_MV_UNROLL
            for (int t = 0; t < T; t++) {
                acc[r][t] = aya_mv_narrow(acc[r][t], type, (const char *) w + (size_t) r * row_stride * wsize, k,
                                          x + (size_t) t * x_stride);
            }
        }
    }
    AYA_MV_UNROLL
    for (int r = 0; r < R; r++) {
        AYA_MV_UNROLL
        for (int t = 0; t < T; t++) {
            out[(size_t) t * out_stride + (size_t) r * out_step] = aya_mv_finish(acc[r][t], type,
                                                                      (const char *) w + (size_t) r * row_stride * wsize,
                                                                      k, x + (size_t) t * x_stride, in_dim);
        }
    }
}

/* R rows (R <= AYA_MV_ROWS) against T tokens, T <= AYA_MV_TOKENS only known at run time: the block for that T. */
static inline __attribute__((always_inline)) void aya_mv_tokens_block(int type, const void *w, size_t in_dim,
                                                                      size_t head, const aya_mv_x *x, size_t x_stride, float *out,
                                                                      size_t out_stride, const char *pf, const int R,
                                                                      int32_t T) {
    switch (T) { /* cases past AYA_MV_TOKENS never run: they collapse to T = 1 so that no code is made for them */
    case 1: aya_mv_block(type, w, in_dim, head, x, x_stride, out, out_stride, pf, R, 1, in_dim, 1); break;
    case 2: aya_mv_block(type, w, in_dim, head, x, x_stride, out, out_stride, pf, R, AYA_MV_TOKENS >= 2 ? 2 : 1, in_dim, 1); break;
    case 3: aya_mv_block(type, w, in_dim, head, x, x_stride, out, out_stride, pf, R, AYA_MV_TOKENS >= 3 ? 3 : 1, in_dim, 1); break;
    default: aya_mv_block(type, w, in_dim, head, x, x_stride, out, out_stride, pf, R, AYA_MV_TOKENS >= 4 ? 4 : 1, in_dim, 1); break;
    }
}

/* out[t * out_stride + r] = row r . x[t * x_stride ...] for t < tokens and r in [row_start, row_end). Each group of
 * rows is dotted with every token while it is in L1/L2, AYA_MV_TOKENS tokens per widening, so the weights stream from
 * memory once for all tokens (a batch of decoding sequences); each output is computed exactly as for one token, so
 * batching never changes a bit. */
static inline __attribute__((always_inline)) void aya_matvec_tokens(int type, const void *w, const aya_mv_x *x,
                                                                    size_t x_stride, float *out, int32_t tokens,
                                                                    int32_t in_dim, int32_t out_stride,
                                                                    int32_t row_start, int32_t row_end) {
    size_t row_bytes = (size_t) in_dim * aya_mv_weight_bytes(type), head = aya_mv_aligned_head(type, w, in_dim);
    if (tokens == 1) {
        /* Decode: the AYA_MV_ROWS rows of a pass are a quarter of the slice apart, four forward streams far apart that
         * the hardware prefetchers follow (full size, bf16, 2 threads, 6 alternated rounds: 1.02-1.13x the decode of
         * neighbouring rows with a prefetch 64 KiB ahead, 84-94% of the read bound). Each stream is also prefetched
         * AYA_MV_DECODE_AHEAD bytes ahead of its reads, when set: the hardware alone keeps too few lines in flight for
         * one core (docs/performance-native.md #13). A quarter's rows are consecutive, so reading ahead past a row's
         * end fetches the next one's start. The rows left over (fewer than AYA_MV_ROWS) go one at a time. */
        int32_t quarter = (row_end - row_start) / AYA_MV_ROWS;
        for (int32_t i = 0; i < quarter; i++) {
            const char *rows = (const char *) w + (size_t) (row_start + i) * row_bytes;
            aya_mv_block(type, rows, (size_t) in_dim, head, x, x_stride, out + row_start + i, 0,
                         AYA_MV_DECODE_AHEAD > 0 ? rows + AYA_MV_DECODE_AHEAD : NULL, AYA_MV_ROWS, 1,
                         (size_t) quarter * (size_t) in_dim, (size_t) quarter);
        }
        for (int32_t r = row_start + quarter * AYA_MV_ROWS; r < row_end; r++) {
            aya_mv_block(type, (const char *) w + (size_t) r * row_bytes, (size_t) in_dim, head, x, x_stride, out + r, 0,
                         NULL, 1, 1, (size_t) in_dim, 1);
        }
        return;
    }
    int32_t ahead = aya_decode_prefetch_rows(row_bytes, AYA_MV_ROWS);
    /* tokens per block, as even as the blocks allow (5 tokens: 3 + 2, not 4 + 1) */
    int32_t blocks = (tokens + AYA_MV_TOKENS - 1) / AYA_MV_TOKENS, chunk = (tokens + blocks - 1) / blocks;
    int32_t r = row_start;
    for (; r + AYA_MV_ROWS <= row_end; r += AYA_MV_ROWS) {
        const char *rows = (const char *) w + (size_t) r * row_bytes;
        /* only rows of this slice: past its end are another thread's rows or another matrix */
        const char *pf = r + ahead + AYA_MV_ROWS <= row_end ? rows + (size_t) ahead * row_bytes : NULL;
        for (int32_t t = 0; t < tokens; t += chunk) { /* the first tokens' pass prefetches */
            int32_t n = tokens - t < chunk ? tokens - t : chunk;
            for (int32_t rr = 0; rr < AYA_MV_ROWS; rr += AYA_MV_TOKEN_ROWS) {
                aya_mv_tokens_block(type, rows + (size_t) rr * row_bytes, (size_t) in_dim, head, x + (size_t) t * x_stride,
                                    x_stride, out + (size_t) t * (size_t) out_stride + r + rr, (size_t) out_stride,
                                    t == 0 && pf != NULL ? pf + (size_t) rr * row_bytes : NULL, AYA_MV_TOKEN_ROWS, n);
            }
        }
    }
    for (; r < row_end; r++) {
        for (int32_t t = 0; t < tokens; t += chunk) {
            int32_t n = tokens - t < chunk ? tokens - t : chunk;
            aya_mv_tokens_block(type, (const char *) w + (size_t) r * row_bytes, (size_t) in_dim, head,
                                x + (size_t) t * x_stride, x_stride, out + (size_t) t * (size_t) out_stride + r,
                                (size_t) out_stride, NULL, 1, n);
        }
    }
}

#ifdef AYA_MV_SPLIT
/* x (tokens rows of in_dim) split into the calling thread's scratch: the head and the inputs past the last whole step
 * stay in order (the head, narrow and tail code reads them so). NULL if memory runs out. */
static inline const float *aya_mv_split_x(const float *x, int32_t tokens, int32_t in_dim, size_t head) {
    float *split = aya_scratch(AYA_SCRATCH_SPLIT_X, (size_t) tokens * (size_t) in_dim * sizeof(float));
    if (split == NULL) return NULL;
    for (int32_t t = 0; t < tokens; t++) {
        const float *src = x + (size_t) t * (size_t) in_dim;
        float *dst = split + (size_t) t * (size_t) in_dim;
        size_t k = 0;
        for (; k < head; k++) dst[k] = src[k];
        for (; k + AYA_MV_STEP <= (size_t) in_dim; k += AYA_MV_STEP) aya_mv_split_step(src + k, dst + k);
        for (; k < (size_t) in_dim; k++) dst[k] = src[k];
    }
    return split;
}

/* aya_matvec_tokens for up to AYA_MV_FEW_TOKENS tokens of f32 activations: bf16 weights against a split copy of x. */
static inline __attribute__((always_inline)) void aya_matvec_few(int type, const void *w, const float *x, float *out,
                                                                 int32_t tokens, int32_t in_dim, int32_t out_stride,
                                                                 int32_t row_start, int32_t row_end) {
    const float *split = type == AYA_WEIGHT_BF16
        ? aya_mv_split_x(x, tokens, in_dim, aya_mv_aligned_head(AYA_BF16_SPLIT, w, in_dim)) : NULL;
    if (split != NULL) {
        aya_matvec_tokens(AYA_BF16_SPLIT, w, split, (size_t) in_dim, out, tokens, in_dim, out_stride, row_start, row_end);
    } else { /* f32, f16, or no memory for the split copy (bf16 then the slower way: sums in another order) */
        aya_matvec_tokens(type, w, x, (size_t) in_dim, out, tokens, in_dim, out_stride, row_start, row_end);
    }
}
#endif

static inline __attribute__((always_inline)) void aya_matvec(int type, const void *w, const aya_mv_x *x, float *out,
                                                             int32_t in_dim, int32_t row_start, int32_t row_end) {
    aya_matvec_tokens(type, w, x, 0, out, 1, in_dim, 0, row_start, row_end);
}

#endif
