/* Internal: the decode (one token) matrix-vector loop, written once for every ISA and weight type, BLIS style: this
 * file owns the row blocking and the prefetch; the file that includes it supplies only the micro-kernel below, which
 * widens one row's weights and multiply-adds them into that row's accumulators. Each row's sum depends only on that
 * row, so neither the blocking nor the split of rows over threads changes a bit.
 *
 * Define before including (the micro-kernel; type is an enum aya_weight_type, a compile-time constant where inlined):
 *   AYA_MV_STEP                inputs per step of the main loop
 *   AYA_MV_NARROW              inputs per step after it (one vector; equal to AYA_MV_STEP when there is no such step)
 *   aya_mv_x                   the activations a step reads (e.g. float, or bf16 pairs)
 *   aya_mv_acc                 one row's accumulators
 *   aya_mv_xs                  one step's activations, loaded once for all rows of a group
 *   aya_mv_zero()                          -> aya_mv_acc
 *   aya_mv_load_x(x, k)                    -> aya_mv_xs        activations [k, k + AYA_MV_STEP)
 *   aya_mv_step(acc, type, row, k, xs)     -> aya_mv_acc       adds row[k, k + AYA_MV_STEP) . xs
 *   aya_mv_narrow(acc, type, row, k, x)    -> aya_mv_acc       adds row[k, k + AYA_MV_NARROW) . x[k, ...)
 *   aya_mv_finish(acc, type, row, k, x, in_dim) -> float       the row's sum, adding inputs [k, in_dim)
 * where row points at the row's first weight. Then aya_matvec(type, w, x, out, in_dim, row_start, row_end) sets
 * out[r] = row r . x for r in [row_start, row_end). */
#ifndef AYA_MATVEC_LOOP_H
#define AYA_MATVEC_LOOP_H

#include "kernels_internal.h"

enum { AYA_MV_ROWS = 4 }; /* rows streamed at once: 4 independent memory streams and 4-8 FMA chains */
/* Up to this many tokens (a step of a few decoding sequences) the matvec re-reads each group of rows from cache for
 * every token instead of going to the packed GEMM, whose packing costs more than it saves at so few tokens. */
#ifndef AYA_MV_FEW_TOKENS
#define AYA_MV_FEW_TOKENS 7
#endif

static inline size_t aya_mv_weight_bytes(int type) {
    return type == AYA_WEIGHT_F32 ? 4 : 2;
}

/* R rows (a constant) from w, in_dim weights each, dotted with x into out[0, R). pf, when not NULL, is where row 0 of
 * a group of rows further on starts: its R rows (same stride) are prefetched at the offset being read. */
static inline __attribute__((always_inline)) void aya_mv_rows(int type, const void *w, size_t in_dim,
                                                              const aya_mv_x *x, float *out, const char *pf,
                                                              const int R) {
    const size_t wsize = aya_mv_weight_bytes(type);
    aya_mv_acc acc[AYA_MV_ROWS];
    for (int r = 0; r < R; r++) acc[r] = aya_mv_zero();
    size_t k = 0;
    for (; k + AYA_MV_STEP <= in_dim; k += AYA_MV_STEP) {
        if (pf != NULL) {
            for (int r = 0; r < R; r++) {
                for (size_t b = 0; b < AYA_MV_STEP * wsize; b += 64) { /* every cache line this step reads */
                    __builtin_prefetch(pf + ((size_t) r * in_dim + k) * wsize + b, 0, 3);
                }
            }
        }
        aya_mv_xs xs = aya_mv_load_x(x, k);
        for (int r = 0; r < R; r++) {
            acc[r] = aya_mv_step(acc[r], type, (const char *) w + (size_t) r * in_dim * wsize, k, xs);
        }
    }
    for (; k + AYA_MV_NARROW <= in_dim; k += AYA_MV_NARROW) {
        for (int r = 0; r < R; r++) {
            acc[r] = aya_mv_narrow(acc[r], type, (const char *) w + (size_t) r * in_dim * wsize, k, x);
        }
    }
    for (int r = 0; r < R; r++) {
        out[r] = aya_mv_finish(acc[r], type, (const char *) w + (size_t) r * in_dim * wsize, k, x, in_dim);
    }
}

/* out[t * out_stride + r] = row r . x[t * in_dim ...] for t < tokens and r in [row_start, row_end). Each group of rows
 * is dotted with every token while it is in L1/L2, so the weights stream from memory once for all tokens (a batch of
 * decoding sequences); each output is computed exactly as for one token, so batching never changes a bit. */
static inline __attribute__((always_inline)) void aya_matvec_tokens(int type, const void *w, const aya_mv_x *x,
                                                                    float *out, int32_t tokens, int32_t in_dim,
                                                                    int32_t out_stride, int32_t row_start,
                                                                    int32_t row_end) {
    size_t row_bytes = (size_t) in_dim * aya_mv_weight_bytes(type);
    int32_t ahead = aya_decode_prefetch_rows(row_bytes, AYA_MV_ROWS);
    int32_t r = row_start;
    for (; r + AYA_MV_ROWS <= row_end; r += AYA_MV_ROWS) {
        const char *rows = (const char *) w + (size_t) r * row_bytes;
        /* only rows of this slice: past its end are another thread's rows or another matrix */
        const char *pf = r + ahead + AYA_MV_ROWS <= row_end ? rows + (size_t) ahead * row_bytes : NULL;
        for (int32_t t = 0; t < tokens; t++) { /* the first token's pass prefetches; the others read cached rows */
            aya_mv_rows(type, rows, (size_t) in_dim, x + (size_t) t * (size_t) in_dim, out + (size_t) t * (size_t) out_stride + r,
                        t == 0 ? pf : NULL, AYA_MV_ROWS);
        }
    }
    for (; r < row_end; r++) {
        for (int32_t t = 0; t < tokens; t++) {
            aya_mv_rows(type, (const char *) w + (size_t) r * row_bytes, (size_t) in_dim, x + (size_t) t * (size_t) in_dim,
                        out + (size_t) t * (size_t) out_stride + r, NULL, 1);
        }
    }
}

static inline __attribute__((always_inline)) void aya_matvec(int type, const void *w, const aya_mv_x *x, float *out,
                                                             int32_t in_dim, int32_t row_start, int32_t row_end) {
    aya_matvec_tokens(type, w, x, out, 1, in_dim, 0, row_start, row_end);
}

#endif
