/* Internal: the Q8_0 / Q4_0 matmul driver, written once for every ISA (BLIS style, like matvec_loop.h): it quantizes
 * the activations, walks the rows (decode: rows far apart streamed together, or one after another with prefetch;
 * prefill: panels of rows that stay in L2 while every token passes over them) and hands register tiles to the ISA's
 * micro-kernel.
 *
 * Define before including:
 *   AYA_Q_TILE_TOKENS   tokens per prefill tile (the micro-kernel's RN, at most 4)
 *   aya_q_tile(q4, RM, RN, w, row_bytes, acts, token, in_dim, out, out_stride, out_step, ahead)
 *       out[t * out_stride + r * out_step] = row r . token (token + t) for RM rows from w (row_bytes apart), RN
 *       tokens; q4, RM and RN are compile-time constants at every call site (1 <= RM <= 4, 1 <= RN <= 4). When ahead
 *       is not 0, the tile prefetches its rows' blocks ahead bytes further on, at the offset being read.
 * Optionally:
 *   AYA_Q_DECODE_ROWS(q4)  rows per decode tile: 1 (default), 2 or 4, a 1/AYA_Q_DECODE_ROWS of the slice apart
 *   AYA_Q_DECODE_AHEAD(q4) bytes ahead that those many-row decode tiles prefetch in each row stream (default 0: none)
 *   AYA_Q_TILE_ROWS     rows per prefill tile (default 4, at most 4): fewer when RM x RN accumulators plus the
 *                       rows' weights would not fit the registers
 *   AYA_Q_PREPARE(q4, acts, tokens, in_dim)  called once after quantizing: may put a copy of the activations in the
 *                       tile's own layout into acts->regrouped; returns 0, or -1 if memory runs out
 * Then aya_q_matmul(q4, w, x, out, tokens, in_dim, out_stride, row_start, row_end) is the aya_matmul_q*_0 contract. */
#ifndef AYA_QUANT_LOOP_H
#define AYA_QUANT_LOOP_H

#include <string.h>

#include "kernels_internal.h"

enum { AYA_Q_PANEL_ROWS = 64 }; /* prefill: rows whose blocks stay in L2 while all tokens pass (64 x 11008 Q8_0 = 745 KB) */
#ifndef AYA_Q_DECODE_ROWS
#define AYA_Q_DECODE_ROWS(q4) 1
#endif
#ifndef AYA_Q_DECODE_AHEAD
#define AYA_Q_DECODE_AHEAD(q4) 0
#endif
#ifndef AYA_Q_TILE_ROWS
#define AYA_Q_TILE_ROWS 4
#endif
enum { AYA_Q_REUSE_TOKENS = 4 }; /* decode steps: x is compared and copied, cheap next to quantizing it again */

/* A regrouping that AYA_Q_PREPARE may use: for every token and every whole step of n blocks (n = 2 or 4), in order,
 *   int8_t lo[16 n], hi[16 n]: values 0..15 and 16..31 of the step's blocks, block j at 16 j
 *   int32_t offset[4 n]:      offset * sum(x) of block j in lane 4 j, 0 in its other three lanes
 *   float d[4 n]:             block j's scale in lanes 4 j .. 4 j + 3
 * (the [b0 | b1 | ..] layout of 16-byte halves that the Q4_0 nibbles unpack to), into the calling thread's scratch,
 * pointed to by acts->regrouped. Returns 0, or -1 if memory runs out. */
static inline int aya_q_regroup(aya_q8_acts *acts, int32_t tokens, int32_t in_dim, int n, int32_t offset) {
    const int32_t blocks = in_dim / AYA_QK, steps = blocks / n;
    const size_t step_bytes = (size_t) n * (2 * 16 + 4 * sizeof(int32_t) + 4 * sizeof(float));
    uint8_t *all = aya_q8_regrouped((size_t) tokens * (size_t) steps * step_bytes + 1);
    if (all == NULL) return -1;
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t k = 0; k < steps; k++) {
            uint8_t *step = all + ((size_t) t * steps + k) * step_bytes;
            int8_t *lo = (int8_t *) step, *hi = lo + 16 * n;
            int32_t *offsets = (int32_t *) (hi + 16 * n);
            float *d = (float *) (offsets + 4 * n);
            size_t b0 = (size_t) t * blocks + (size_t) k * n;
            for (int j = 0; j < n; j++) {
                memcpy(lo + 16 * j, acts->q + (b0 + j) * AYA_QK, 16);
                memcpy(hi + 16 * j, acts->q + (b0 + j) * AYA_QK + 16, 16);
                for (int lane = 0; lane < 4; lane++) {
                    offsets[4 * j + lane] = lane == 0 ? offset * acts->sum[b0 + j] : 0;
                    d[4 * j + lane] = acts->d[b0 + j];
                }
            }
        }
    acts->regrouped = all;
    return 0;
}

/* The tile for rm (1..4) rows x rn (1..4) tokens: from runtime sizes to compile-time ones. */
#define AYA_Q_TILE_CASE(RM, RN) \
    case (RM) * 8 + (RN): aya_q_tile(q4, RM, RN, w, row_bytes, acts, token, in_dim, out, out_stride, 1, ahead); break;
static inline __attribute__((always_inline)) void aya_q_any_tile(const int q4, int rm, int rn, const uint8_t *w,
                                                                 size_t row_bytes, const aya_q8_acts *acts,
                                                                 int32_t token, int32_t in_dim, float *out,
                                                                 int32_t out_stride, size_t ahead) {
    switch (rm * 8 + rn) {
        AYA_Q_TILE_CASE(1, 1) AYA_Q_TILE_CASE(2, 1) AYA_Q_TILE_CASE(3, 1) AYA_Q_TILE_CASE(4, 1)
        AYA_Q_TILE_CASE(1, 2) AYA_Q_TILE_CASE(2, 2) AYA_Q_TILE_CASE(3, 2) AYA_Q_TILE_CASE(4, 2)
        AYA_Q_TILE_CASE(1, 3) AYA_Q_TILE_CASE(2, 3) AYA_Q_TILE_CASE(3, 3) AYA_Q_TILE_CASE(4, 3)
        AYA_Q_TILE_CASE(1, 4) AYA_Q_TILE_CASE(2, 4) AYA_Q_TILE_CASE(3, 4) AYA_Q_TILE_CASE(4, 4)
        default: break;
    }
}
#undef AYA_Q_TILE_CASE

static inline __attribute__((always_inline)) void aya_q_matmul(const int q4, const void *w, const float *x, float *out,
                                                               int32_t tokens, int32_t in_dim, int32_t out_stride,
                                                               int32_t row_start, int32_t row_end) {
    /* A decode matmul comes in pieces (several per thread) and matrices share their input (q/k/v, gate/up): each
     * thread reuses its last quantization while x's bytes and shape are the same and nothing has quantized since
     * (aya_q8_generation; every writer of those buffers goes through aya_q8_buffers), and its regrouping
     * (AYA_Q_PREPARE) with it while nothing else has written the regrouped buffer (aya_q8_regrouped_generation: the
     * packed prefill writes it, also after a Q8_K quantization, which leaves aya_q8_generation alone) and q4 is the
     * same (AVX2: ~0.3 us per call of 2048 inputs, 2 us of 11008, against 3-60 us for a decode piece). */
    static _Thread_local struct {
        uint64_t generation, regrouped_generation;
        int32_t tokens, in_dim;
        int valid, regrouped_valid, regrouped_q4;
        aya_q8_acts acts;
        const void *regrouped;
    } last;
    aya_q8_acts acts;
    const size_t x_bytes = (size_t) tokens * (size_t) in_dim * sizeof(float);
    float *source = tokens <= AYA_Q_REUSE_TOKENS ? aya_scratch(AYA_SCRATCH_Q8_SOURCE, x_bytes) : NULL;
    if (source != NULL && last.valid && last.generation == aya_q8_generation() && last.tokens == tokens
        && last.in_dim == in_dim && memcmp(source, x, x_bytes) == 0) {
        acts = last.acts;
    } else {
        last.valid = 0;
        last.regrouped_valid = 0;
        if (aya_quantize_activations_avx2(x, tokens, in_dim, &acts) != 0) return; /* out of memory: no error channel */
        if (source != NULL) {
            memcpy(source, x, x_bytes);
            last.generation = aya_q8_generation();
            last.tokens = tokens;
            last.in_dim = in_dim;
            last.acts = acts;
            last.valid = 1;
        }
    }
    acts.regrouped = NULL;
#ifdef AYA_Q_PREPARE
    if (last.valid && last.regrouped_valid && last.regrouped_q4 == q4
        && last.regrouped_generation == aya_q8_regrouped_generation()) { /* (last.valid: acts is last.acts) */
        acts.regrouped = last.regrouped;
    } else {
        if (AYA_Q_PREPARE(q4, &acts, tokens, in_dim) != 0) return;
        if (last.valid) {
            last.regrouped = acts.regrouped;
            last.regrouped_generation = aya_q8_regrouped_generation();
            last.regrouped_q4 = q4;
            last.regrouped_valid = 1;
        }
    }
#endif
    size_t row_bytes = (size_t) (in_dim / AYA_QK) * (q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES);
    const uint8_t *base = (const uint8_t *) w;
    if (tokens == 1) {
        /* Decode: AYA_Q_DECODE_ROWS(q4) rows per tile, a 1/AYA_Q_DECODE_ROWS of the slice apart (matvec_loop.h's
         * pattern: that many forward streams far apart, which the hardware prefetchers follow; software prefetch
         * AYA_Q_DECODE_AHEAD(q4) bytes on in each, 0 for none),
         * sharing the token's loads and shuffles; one row at a time (rows in order, prefetching ~64 KiB ahead) when
         * it is 1. Tiles of neighbouring rows (streams 1-6 KB apart) read DRAM at 0.6x the speed of one row at a time
         * on Zen 5 (Q4_0 18 vs 29.6 GB/s); a quarter of the slice apart, one thread: Q8_0 28 -> 32-33 GB/s from memory,
         * 34-45 -> 51-60 in cache, Q4_0 25-29 -> 28-31 / 36 -> 43-48 (native/tests/bench_quant, AVX-512). Each row's
         * sum is computed as in a one-row tile, so the rows per tile never change a bit. */
        const int32_t R = AYA_Q_DECODE_ROWS(q4); /* a constant once q4 is: the tile's RM */
        if (R > 1) {
            int32_t part = (row_end - row_start) / R;
            for (int32_t i = 0; i < part; i++)
                aya_q_tile(q4, R, 1, base + (size_t) (row_start + i) * row_bytes, (size_t) part * row_bytes, &acts, 0,
                           in_dim, out + row_start + i, out_stride, (size_t) part, AYA_Q_DECODE_AHEAD(q4));
            for (int32_t r = row_start + part * R; r < row_end; r++)
                aya_q_tile(q4, 1, 1, base + (size_t) r * row_bytes, row_bytes, &acts, 0, in_dim, out + r, out_stride, 1,
                           0);
            return;
        }
        int32_t ahead_rows = aya_decode_prefetch_rows(row_bytes, 1);
        for (int32_t r = row_start; r < row_end; r++) {
            /* only rows of this slice: past its end are another thread's rows or another matrix */
            size_t ahead = r + ahead_rows < row_end ? (size_t) ahead_rows * row_bytes : 0;
            aya_q_tile(q4, 1, 1, base + (size_t) r * row_bytes, row_bytes, &acts, 0, in_dim, out + r, out_stride, 1,
                       ahead);
        }
        return;
    }
    for (int32_t p0 = row_start; p0 < row_end; p0 += AYA_Q_PANEL_ROWS) {
        int32_t p1 = p0 + AYA_Q_PANEL_ROWS < row_end ? p0 + AYA_Q_PANEL_ROWS : row_end;
        for (int32_t t = 0; t < tokens; t += AYA_Q_TILE_TOKENS) {
            int rn = tokens - t < AYA_Q_TILE_TOKENS ? tokens - t : AYA_Q_TILE_TOKENS;
            float *ot = out + (size_t) t * out_stride;
            for (int32_t r = p0; r < p1; r += AYA_Q_TILE_ROWS) {
                int rm = p1 - r < AYA_Q_TILE_ROWS ? p1 - r : AYA_Q_TILE_ROWS;
                aya_q_any_tile(q4, rm, rn, base + (size_t) r * row_bytes, row_bytes, &acts, t, in_dim, ot + r,
                               out_stride, 0);
            }
        }
    }
}

#endif
