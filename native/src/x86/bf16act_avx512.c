/* AVX512_BF16 matrix products with bf16 activations (aya_matmul_bf16_bf16). vdpbf16ps multiplies 32 bf16 pairs and
 * adds the two products of each pair into one of 16 f32 lanes: twice the multiply-adds of an f32 FMA per instruction.
 *
 * Prefill (tokens > 1) is a packed, register-blocked GEMM:
 *   - x is rounded to bf16 once per call into xb [tokens][pairs]: pair p of a token holds elements 2p and 2p+1 in one
 *     u32 (low half first), and an odd in_dim gets a zero pad;
 *   - each panel of 32 weight rows x 256 k-values is repacked pair-interleaved, panel[p][r] = (w[r][2p], w[r][2p+1]),
 *     so one 64-byte load holds pair p of 16 rows (16 KiB per panel: stays in L1 while every token passes over it);
 *   - the micro-kernel keeps 32 rows x 12 tokens of sums in 24 zmm accumulators. Per pair it loads 2 weight vectors,
 *     broadcasts each token's x pair (12 broadcast loads) and issues 24 vdpbf16ps (768 multiply-adds). Each accumulator
 *     holds 16 consecutive rows of one token, so results are stored directly: no horizontal sums.
 * Decode (tokens == 1) is bandwidth-bound: the shared loop of matvec_loop.h streams the rows straight from w against
 * xb, with the micro-kernel below.
 *
 * Numerics (see aya_kernels.h): products are exact, sums f32 in the instruction's order; vdpbf16ps also treats denormal
 * inputs as zero and flushes denormal results. */
#ifdef AYA_EMULATE_AVX512
/* Test build only (tests/bf16act_avx512_emulated.c): the same code on SIMDe's portable AVX-512 and AVX512_BF16. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include <stdlib.h>

#include "bf16act.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { PANEL_ROWS = 32, PANEL_PAIRS = 128, TOKEN_BLOCK = 12 };

/* acc[i] += a[2i] * b[2i] + a[2i+1] * b[2i+1], the 32 bf16 of a and b in 16 u32 lanes. */
AYA_ALWAYS_INLINE __m512 dot_pairs(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh) a, (__m512bh) b);
}

/* x [tokens, in_dim] as bf16 pairs [tokens][pairs], in the calling thread's scratch (native/src/scratch.c). NULL if memory runs out. */
static const uint32_t *pack_activations(const float *x, int32_t tokens, int32_t in_dim, int32_t pairs) {
    size_t n = (size_t) tokens * (size_t) pairs;
    uint32_t *packed = aya_scratch(AYA_SCRATCH_BF16_X, n * sizeof(uint32_t));
    if (packed == NULL) return NULL;
    for (int32_t t = 0; t < tokens; t++) {
        const float *xt = x + (size_t) t * (size_t) in_dim;
        uint32_t *dst = packed + (size_t) t * (size_t) pairs;
        for (int32_t p = 0; p < in_dim / 2; p++) {
            dst[p] = aya_f32_to_bf16(xt[2 * p]) | (uint32_t) aya_f32_to_bf16(xt[2 * p + 1]) << 16;
        }
        if (in_dim % 2 != 0) dst[pairs - 1] = aya_f32_to_bf16(xt[in_dim - 1]);
    }
    return packed;
}

/* dst[j * 32] = pair j of the 16 rows whose pairs are rows[0..15], for j < 16: a 16 x 16 transpose of u32 in four
 * rounds of shuffles (32-bit, 64-bit, then 128-bit lanes twice), 64 shuffles for 256 pairs. */
static void transpose_16x16(const __m512i rows[16], uint32_t *dst) {
    __m512i a[16], b[16], c[16];
    for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_epi32(rows[i], rows[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(rows[i], rows[i + 1]);
    }
    /* b[4g + k], 128-bit lane L: pair 4L + k of rows 4g..4g+3 */
    for (int g = 0; g < 16; g += 4) {
        b[g] = _mm512_unpacklo_epi64(a[g], a[g + 2]);
        b[g + 1] = _mm512_unpackhi_epi64(a[g], a[g + 2]);
        b[g + 2] = _mm512_unpacklo_epi64(a[g + 1], a[g + 3]);
        b[g + 3] = _mm512_unpackhi_epi64(a[g + 1], a[g + 3]);
    }
    /* c[k], c[4 + k]: lanes 0 and 2 (1 and 3) of rows 0-3, 4-7; c[8 + k], c[12 + k]: the same of rows 8-11, 12-15 */
    for (int k = 0; k < 4; k++) {
        c[k] = _mm512_shuffle_i32x4(b[k], b[4 + k], 0x88);
        c[4 + k] = _mm512_shuffle_i32x4(b[k], b[4 + k], 0xdd);
        c[8 + k] = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0x88);
        c[12 + k] = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0xdd);
    }
    for (int k = 0; k < 4; k++) {
        _mm512_store_si512((void *) (dst + k * PANEL_ROWS), _mm512_shuffle_i32x4(c[k], c[8 + k], 0x88));
        _mm512_store_si512((void *) (dst + (8 + k) * PANEL_ROWS), _mm512_shuffle_i32x4(c[k], c[8 + k], 0xdd));
        _mm512_store_si512((void *) (dst + (4 + k) * PANEL_ROWS), _mm512_shuffle_i32x4(c[4 + k], c[12 + k], 0x88));
        _mm512_store_si512((void *) (dst + (12 + k) * PANEL_ROWS), _mm512_shuffle_i32x4(c[4 + k], c[12 + k], 0xdd));
    }
}

/* panel[p * 32 + r] = pair p0 + p of weight row r0 + r, for p < np; rows from `rows` on are zero. Whole blocks of 16
 * rows x 16 pairs go through one transpose in registers; the pairs past the last whole block (and the half pair of an
 * odd in_dim) one by one. */
static void pack_panel(const uint16_t *w, int32_t in_dim, int32_t r0, int32_t rows, int32_t p0, int32_t np,
                       uint32_t *panel) {
    int32_t whole = in_dim / 2; /* pairs with both elements in the row; an odd in_dim ends with a half pair */
    int32_t vector_pairs = whole - p0 < np ? whole - p0 : np;
    vector_pairs = vector_pairs > 0 ? vector_pairs / 16 * 16 : 0;
    for (int32_t half = 0; half < PANEL_ROWS; half += 16) {
        for (int32_t p = 0; p < vector_pairs; p += 16) {
            __m512i block[16];
            for (int32_t r = 0; r < 16; r++) {
                const uint16_t *row = w + (size_t) (r0 + half + r) * (size_t) in_dim + 2 * (size_t) (p0 + p);
                block[r] = half + r < rows ? _mm512_loadu_si512((const void *) row) : _mm512_setzero_si512();
            }
            transpose_16x16(block, panel + p * PANEL_ROWS + half);
        }
    }
    for (int32_t r = 0; r < PANEL_ROWS; r++) {
        if (r >= rows) {
            for (int32_t p = vector_pairs; p < np; p++) panel[p * PANEL_ROWS + r] = 0;
            continue;
        }
        const uint16_t *row = w + (size_t) (r0 + r) * (size_t) in_dim;
        for (int32_t p = vector_pairs; p < np; p++) {
            int32_t pair = p0 + p;
            uint32_t v;
            if (pair < whole) memcpy(&v, row + 2 * pair, sizeof v);
            else v = row[2 * pair]; /* never reads past the row: the next one may not exist */
            panel[p * PANEL_ROWS + r] = v;
        }
    }
}

/* Stores (or adds, when accumulate) 32 rows of one token's sums; only the first `rows` are real. */
AYA_ALWAYS_INLINE void store_rows(float *dst, __m512 lo, __m512 hi, int32_t rows, int accumulate) {
    if (rows == PANEL_ROWS) {
        if (accumulate) {
            lo = _mm512_add_ps(_mm512_loadu_ps(dst), lo);
            hi = _mm512_add_ps(_mm512_loadu_ps(dst + 16), hi);
        }
        _mm512_storeu_ps(dst, lo);
        _mm512_storeu_ps(dst + 16, hi);
        return;
    }
    float sums[PANEL_ROWS];
    _mm512_storeu_ps(sums, lo);
    _mm512_storeu_ps(sums + 16, hi);
    for (int32_t r = 0; r < rows; r++) dst[r] = accumulate ? dst[r] + sums[r] : sums[r];
}

/* 32 panel rows x T tokens over np pairs: token t's pairs at xp + t * x_stride, its outputs at o + t * o_stride. */
AYA_ALWAYS_INLINE void micro(const uint32_t *panel, int32_t np, const uint32_t *xp, size_t x_stride,
                             float *o, size_t o_stride, int32_t rows, int accumulate, const int T) {
    __m512 lo[TOKEN_BLOCK], hi[TOKEN_BLOCK]; /* rows 0-15 and 16-31 */
    for (int t = 0; t < T; t++) {
        lo[t] = _mm512_setzero_ps();
        hi[t] = _mm512_setzero_ps();
    }
    for (int32_t p = 0; p < np; p++) {
        __m512i w_lo = _mm512_load_si512((const void *) (panel + p * PANEL_ROWS));
        __m512i w_hi = _mm512_load_si512((const void *) (panel + p * PANEL_ROWS + 16));
        for (int t = 0; t < T; t++) {
            __m512i xv = _mm512_set1_epi32((int32_t) xp[(size_t) t * x_stride + (size_t) p]);
            lo[t] = dot_pairs(lo[t], w_lo, xv);
            hi[t] = dot_pairs(hi[t], w_hi, xv);
        }
    }
    for (int t = 0; t < T; t++) store_rows(o + (size_t) t * o_stride, lo[t], hi[t], rows, accumulate);
}

static void gemm(const uint16_t *w, const uint32_t *xb, float *out, int32_t tokens, int32_t in_dim, int32_t pairs,
                 int32_t out_stride, int32_t row_start, int32_t row_end) {
    uint32_t panel[PANEL_PAIRS * PANEL_ROWS] __attribute__((aligned(64)));
    for (int32_t r0 = row_start; r0 < row_end; r0 += PANEL_ROWS) {
        int32_t rows = row_end - r0 < PANEL_ROWS ? row_end - r0 : PANEL_ROWS;
        for (int32_t p0 = 0; p0 < pairs; p0 += PANEL_PAIRS) {
            int32_t np = pairs - p0 < PANEL_PAIRS ? pairs - p0 : PANEL_PAIRS;
            int accumulate = p0 > 0;
            pack_panel(w, in_dim, r0, rows, p0, np, panel);
            /* the next panel: the next pairs of these rows, else the first pairs of the next rows */
            int32_t next_r0 = p0 + PANEL_PAIRS < pairs ? r0 : r0 + PANEL_ROWS;
            int32_t next_p0 = p0 + PANEL_PAIRS < pairs ? p0 + PANEL_PAIRS : 0;
            int32_t next_np = pairs - next_p0 < PANEL_PAIRS ? pairs - next_p0 : PANEL_PAIRS;
            int32_t next_rows = row_end - next_r0 < PANEL_ROWS ? row_end - next_r0 : PANEL_ROWS;
            aya_block_prefetcher pf = { (const char *) (w + (size_t) next_r0 * (size_t) in_dim + 2 * (size_t) next_p0),
                                        (size_t) in_dim * sizeof(uint16_t), next_np * 4 / 64 + 1,
                                        next_r0 < row_end ? next_rows : 0, 0, 0 };
            int32_t tiles = (tokens + TOKEN_BLOCK - 1) / TOKEN_BLOCK;
            int32_t per_tile = (pf.rows * pf.lines_per_row + tiles - 1) / tiles;
            for (int32_t t0 = 0; t0 < tokens; t0 += TOKEN_BLOCK) {
                aya_prefetch_some(&pf, per_tile);
                const uint32_t *xp = xb + (size_t) t0 * (size_t) pairs + (size_t) p0;
                float *o = out + (size_t) t0 * (size_t) out_stride + (size_t) r0;
                size_t xs = (size_t) pairs, os = (size_t) out_stride;
                switch (tokens - t0 < TOKEN_BLOCK ? tokens - t0 : TOKEN_BLOCK) {
                case 1:  micro(panel, np, xp, xs, o, os, rows, accumulate, 1); break;
                case 2:  micro(panel, np, xp, xs, o, os, rows, accumulate, 2); break;
                case 3:  micro(panel, np, xp, xs, o, os, rows, accumulate, 3); break;
                case 4:  micro(panel, np, xp, xs, o, os, rows, accumulate, 4); break;
                case 5:  micro(panel, np, xp, xs, o, os, rows, accumulate, 5); break;
                case 6:  micro(panel, np, xp, xs, o, os, rows, accumulate, 6); break;
                case 7:  micro(panel, np, xp, xs, o, os, rows, accumulate, 7); break;
                case 8:  micro(panel, np, xp, xs, o, os, rows, accumulate, 8); break;
                case 9:  micro(panel, np, xp, xs, o, os, rows, accumulate, 9); break;
                case 10: micro(panel, np, xp, xs, o, os, rows, accumulate, 10); break;
                case 11: micro(panel, np, xp, xs, o, os, rows, accumulate, 11); break;
                default: micro(panel, np, xp, xs, o, os, rows, accumulate, 12); break;
                }
            }
        }
    }
}

/* The decode micro-kernel for matvec_loop.h: 32 inputs (16 pairs) per vdpbf16ps; the last partial 32 come from
 * zero-padded copies. */
#define AYA_MV_STEP 32
#define AYA_MV_NARROW 32 /* no narrower step */
#define AYA_MV_ALIGN 64  /* a 64-byte load of weights that crosses a line costs about as much as the step */
#define AYA_MV_HEAD_MULTIPLE 2
#define AYA_MV_TOKENS 4
#define AYA_MV_TOKEN_ROWS 4 /* 16 accumulators, 4 activation vectors */
typedef uint32_t aya_mv_x; /* bf16 pairs, as pack_activations writes them */
typedef __m512 aya_mv_acc;
typedef __m512i aya_mv_xs;
typedef __m512i aya_mv_w;

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_zero(void) {
    return _mm512_setzero_ps();
}

AYA_ALWAYS_INLINE aya_mv_xs aya_mv_load_x(const uint32_t *xb, size_t k) {
    aya_mv_xs xs = _mm512_loadu_si512((const void *) (xb + k / 2));
#ifndef AYA_EMULATE_AVX512
    __asm__("" : "+v"(xs)); /* in a register, loaded once for all rows of a block (not folded into every vdpbf16ps) */
#endif
    return xs;
}

/* Adds the first h weights of row (h < 32, even: whole pairs) times the first h/2 pairs of xb. */
AYA_ALWAYS_INLINE aya_mv_acc aya_mv_head(aya_mv_acc acc, int type, const void *row, size_t h, const uint32_t *xb) {
    (void) type;
#ifdef AYA_EMULATE_AVX512
    uint32_t w_pairs[16] = { 0 }, x_pairs[16] = { 0 }; /* SIMDe has no masked loads */
    memcpy(w_pairs, row, h * sizeof(uint16_t));
    memcpy(x_pairs, xb, h / 2 * sizeof(uint32_t));
    return dot_pairs(acc, _mm512_loadu_si512((const void *) w_pairs), _mm512_loadu_si512((const void *) x_pairs));
#else
    __mmask16 m = (__mmask16) ((1u << (h / 2)) - 1u);
    return dot_pairs(acc, _mm512_maskz_loadu_epi32(m, row), _mm512_maskz_loadu_epi32(m, xb));
#endif
}

AYA_ALWAYS_INLINE aya_mv_w aya_mv_load_w(int type, const void *row, size_t k) {
    (void) type; /* always bf16 */
    return _mm512_loadu_si512((const void *) ((const uint16_t *) row + k));
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_fma(aya_mv_acc acc, aya_mv_w w, aya_mv_xs xv) {
    return dot_pairs(acc, w, xv);
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_narrow(aya_mv_acc acc, int type, const void *row, size_t k, const uint32_t *xb) {
    return aya_mv_fma(acc, aya_mv_load_w(type, row, k), aya_mv_load_x(xb, k));
}

AYA_ALWAYS_INLINE float aya_mv_finish(aya_mv_acc acc, int type, const void *row, size_t k, const uint32_t *xb,
                                      size_t in_dim) {
    (void) type;
    if (k < in_dim) { /* the last partial step, zero-padded (the zero pad of an odd in_dim is already in xb) */
#ifdef AYA_EMULATE_AVX512
        uint16_t padded[32] = { 0 };
        uint32_t x_pairs[16] = { 0 }; /* SIMDe has no masked loads */
        memcpy(padded, (const uint16_t *) row + k, (in_dim - k) * sizeof(uint16_t));
        memcpy(x_pairs, xb + k / 2, ((in_dim + 1) / 2 - k / 2) * sizeof(uint32_t));
        acc = dot_pairs(acc, _mm512_loadu_si512((const void *) padded), _mm512_loadu_si512((const void *) x_pairs));
#else
        /* masked loads, not copies through the stack: this runs for every row and token of a step (the real files
         * put rows 32 bytes past a line, so every row has a 16-input tail), and a copy's 64-byte reload stalls */
        __mmask32 wm = (__mmask32) ((1ull << (in_dim - k)) - 1u);
        __mmask16 xm = (__mmask16) ((1u << ((in_dim + 1) / 2 - k / 2)) - 1u);
        acc = dot_pairs(acc, _mm512_maskz_loadu_epi16(wm, (const uint16_t *) row + k), _mm512_maskz_loadu_epi32(xm, xb + k / 2));
#endif
    }
    return _mm512_reduce_add_ps(acc);
}

#include "matvec_loop.h"

void aya_matmul_bf16_bf16_avx512bf16(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                     int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (row_start >= row_end) return;
    int32_t pairs = (in_dim + 1) / 2;
    const uint32_t *xb = pack_activations(x, tokens, in_dim, pairs);
    if (xb == NULL) return;
    if (tokens <= AYA_MV_FEW_TOKENS) aya_matvec_tokens(AYA_WEIGHT_BF16, w, xb, (size_t) pairs, out, tokens, in_dim, out_stride, row_start, row_end);
    else gemm((const uint16_t *) w, xb, out, tokens, in_dim, pairs, out_stride, row_start, row_end);
}
