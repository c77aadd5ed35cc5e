/* AVX512_BF16 matrix products with bf16 activations (aya_matmul_bf16_bf16). vdpbf16ps multiplies 32 bf16 pairs and
 * adds the two products of each pair into one of 16 f32 lanes: twice the multiply-adds of an f32 FMA per instruction.
 *
 * Prefill (more than AYA_MV_FEW_TOKENS tokens) is a register-blocked GEMM with one lane per token:
 *   - x is rounded to bf16 pairs (pair p of a token holds elements 2p and 2p+1 in one u32, low half first; an odd
 *     in_dim gets a zero pad) and transposed once per call, in tiles of 32 tokens [pair][token], so one 64-byte load
 *     holds one pair of 16 tokens;
 *   - the weights need no transpose: a row's pair is one u32 of the bf16 matrix, broadcast to all lanes. Each chunk
 *     of 128 pairs of 96 rows is copied (a plain copy, 48 KiB) so that the micro-kernel finds all its rows at fixed
 *     offsets from one pointer, and the next chunk is prefetched while this one runs;
 *   - the micro-kernel keeps 12 rows x 32 tokens of sums in 24 zmm accumulators. Per pair it loads 2 x vectors,
 *     broadcasts each row's pair (12 broadcast loads) and issues 24 vdpbf16ps (768 multiply-adds). Each accumulator
 *     holds 16 tokens of one row: the sums go to a [row][token] block, transposed into out once per 96 rows.
 *   Each output's sum runs over its pairs in order, 128 at a time from zero, the chunks added in order: the same
 *   bits as the earlier row-per-lane GEMM (which repacked every weight panel by transposes, ~11% of its time).
 * Decode (up to AYA_MV_FEW_TOKENS tokens) is bandwidth-bound: the shared loop of matvec_loop.h streams the rows
 * straight from w against x rounded into [tokens][pairs], with the micro-kernel below.
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
#include "transpose_avx512.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { TILE_ROWS = 12, TILE_TOKENS = 32, CHUNK_PAIRS = 128, BLOCK_ROWS = 8 * TILE_ROWS };

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

/* Tokens of a tile: 32, or 16 for a last tile of 1..16 tokens. */
static int32_t tile_tokens(int32_t tokens, int32_t t0) {
    return tokens - t0 > 16 ? TILE_TOKENS : 16;
}

/* aya_f32_to_bf16 of 16 floats, each result in the low half of its u32 lane. */
AYA_ALWAYS_INLINE __m512i round_bf16(__m512 v) {
    __m512i x = _mm512_castps_si512(v), high = _mm512_srli_epi32(x, 16);
    __m512i magnitude = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
    __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(high, _mm512_set1_epi32(1)));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, bias), 16);
    r = _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(_mm512_set1_epi32(0x00800000), magnitude), r,
                                _mm512_and_si512(high, _mm512_set1_epi32(0x8000)));
    return _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(magnitude, _mm512_set1_epi32(0x7f800000)), r,
                                   _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
}

/* 32 floats from x rounded to 16 bf16 pairs (element 2p in the low half of u32 p), as pack_activations makes them. */
AYA_ALWAYS_INLINE __m512i round_pairs(const float *x) {
    __m512i a = round_bf16(_mm512_loadu_ps(x)), b = round_bf16(_mm512_loadu_ps(x + 16));
    /* each 64-bit lane holds two results; moving the upper down by 16 bits puts the pair in its low 32 bits */
    __m256i lo = _mm512_cvtepi64_epi32(_mm512_or_si512(a, _mm512_srli_epi64(a, 16)));
    __m256i hi = _mm512_cvtepi64_epi32(_mm512_or_si512(b, _mm512_srli_epi64(b, 16)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* x [tokens, in_dim] rounded to bf16 pairs (as pack_activations) and transposed for the micro-kernel: tiles of 32
 * tokens (the last may be 16), tile after tile, each [pair][token of the tile], so one 64-byte load holds one pair of
 * 16 tokens; tokens past `tokens` are zero. Whole blocks of 16 tokens x 16 pairs are rounded in registers and go
 * through one transpose; the pairs past them one by one. In the calling thread's scratch; NULL if memory runs out. */
static const uint32_t *pack_activations_transposed(const float *x, int32_t tokens, int32_t in_dim, int32_t pairs) {
    int32_t padded = (tokens + 15) / 16 * 16;
    uint32_t *xt = aya_scratch(AYA_SCRATCH_GEMM_X, (size_t) padded * (size_t) pairs * sizeof(uint32_t));
    if (xt == NULL) return NULL;
    int32_t vector_pairs = in_dim / 32 * 16;
    for (int32_t g0 = 0; g0 < tokens; g0 += 16) {
        int32_t t0 = g0 / TILE_TOKENS * TILE_TOKENS, width = tile_tokens(tokens, t0);
        uint32_t *dst = xt + (size_t) t0 * (size_t) pairs + (size_t) (g0 - t0); /* this group's column of its tile */
        for (int32_t p = 0; p < vector_pairs; p += 16) {
            __m512i rows[16], cols[16];
            for (int32_t i = 0; i < 16; i++) {
                rows[i] = g0 + i < tokens ? round_pairs(x + (size_t) (g0 + i) * (size_t) in_dim + 2 * (size_t) p)
                                          : _mm512_setzero_si512();
            }
            transpose_16x16(rows, cols);
            for (int32_t j = 0; j < 16; j++) _mm512_store_si512((void *) (dst + (size_t) (p + j) * (size_t) width), cols[j]);
        }
        for (int32_t i = 0; i < 16; i++) {
            const float *xi = x + (size_t) (g0 + i) * (size_t) in_dim;
            for (int32_t p = vector_pairs; p < pairs; p++) {
                uint32_t v = 0;
                if (g0 + i < tokens) {
                    v = aya_f32_to_bf16(xi[2 * p]);
                    if (2 * p + 1 < in_dim) v |= (uint32_t) aya_f32_to_bf16(xi[2 * p + 1]) << 16;
                }
                dst[(size_t) p * (size_t) width + i] = v;
            }
        }
    }
    return xt;
}

/* Pairs [p0, p0 + np) of weight rows r0..r0 + rows - 1 as u32 pairs, row i at wc + i * CHUNK_PAIRS (a plain copy: the
 * micro-kernel then finds every row at a fixed offset from one pointer); an odd in_dim's half pair gets a zero high
 * half, and the rows up to the next multiple of TILE_ROWS are zero. */
static void copy_chunk(const uint16_t *w, int32_t in_dim, int32_t r0, int32_t rows, int32_t p0, int32_t np, uint32_t *wc) {
    int32_t whole = in_dim / 2 - p0 < np ? in_dim / 2 - p0 : np; /* the rest is the half pair */
    int32_t tiled = (rows + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
    for (int32_t i = 0; i < tiled; i++) {
        uint32_t *dst = wc + (size_t) i * CHUNK_PAIRS;
        if (i >= rows) {
            memset(dst, 0, (size_t) np * sizeof(uint32_t));
            continue;
        }
        const uint16_t *row = w + (size_t) (r0 + i) * (size_t) in_dim + 2 * (size_t) p0;
        memcpy(dst, row, (size_t) whole * sizeof(uint32_t));
        if (whole < np) dst[whole] = row[2 * whole]; /* never reads past the row: the next one may not exist */
    }
}

/* TILE_ROWS weight rows x G * 16 tokens over the np pairs of one chunk. Row i's pairs are broadcast from
 * wt + i * CHUNK_PAIRS; xt holds the chunk's pairs of the tile's tokens, G * 16 per pair. Each accumulator holds 16
 * tokens of one row; the sums are stored to (or, when accumulate, added to) c[i * c_stride + token]. */
AYA_ALWAYS_INLINE void micro(const uint32_t *wt, int32_t np, const uint32_t *xt, float *c, size_t c_stride,
                             int accumulate, const int G) {
    __m512 acc[TILE_ROWS][2];
    for (int i = 0; i < TILE_ROWS; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int32_t p = 0; p < np; p++) {
        __m512i x0 = _mm512_load_si512((const void *) (xt + (size_t) p * 16 * G));
        __m512i x1 = G == 2 ? _mm512_load_si512((const void *) (xt + (size_t) p * 32 + 16)) : x0;
        for (int i = 0; i < TILE_ROWS; i++) {
            __m512i wv = _mm512_set1_epi32((int32_t) wt[i * CHUNK_PAIRS + p]);
            acc[i][0] = dot_pairs(acc[i][0], wv, x0);
            if (G == 2) acc[i][1] = dot_pairs(acc[i][1], wv, x1);
        }
    }
    for (int i = 0; i < TILE_ROWS; i++) {
        for (int g = 0; g < G; g++) {
            float *dst = c + (size_t) i * c_stride + 16 * g;
            __m512 sum = accumulate ? _mm512_add_ps(_mm512_load_ps(dst), acc[i][g]) : acc[i][g];
            _mm512_store_ps(dst, sum);
        }
    }
}

/* out[t][r0 + i] = c[i * c_stride + t] for i < rows, t < tokens: 16 x 16 blocks through one transpose, the edges
 * one by one. */
static void write_block(const float *c, size_t c_stride, int32_t rows, int32_t tokens, float *out, int32_t out_stride,
                        int32_t r0) {
    int32_t vector_rows = rows / 16 * 16, vector_tokens = tokens / 16 * 16;
    for (int32_t i = 0; i < vector_rows; i += 16) {
        for (int32_t t = 0; t < vector_tokens; t += 16) {
            __m512i in[16], cols[16];
            for (int32_t k = 0; k < 16; k++) in[k] = _mm512_castps_si512(_mm512_load_ps(c + (size_t) (i + k) * c_stride + t));
            transpose_16x16(in, cols);
            for (int32_t j = 0; j < 16; j++) {
                _mm512_storeu_ps(out + (size_t) (t + j) * (size_t) out_stride + r0 + i, _mm512_castsi512_ps(cols[j]));
            }
        }
    }
    for (int32_t t = 0; t < tokens; t++) {
        float *o = out + (size_t) t * (size_t) out_stride + r0;
        for (int32_t i = t < vector_tokens ? vector_rows : 0; i < rows; i++) o[i] = c[(size_t) i * c_stride + t];
    }
}

/* Rows in blocks of BLOCK_ROWS; per block, pairs in chunks of CHUNK_PAIRS (each chunk summed from zero, then added to
 * the block's sums in chunk order); per chunk, the token tiles, and per tile the block's tiles of TILE_ROWS rows: a
 * tile of x (32 tokens x 128 pairs, 16 KiB) stays in L1 while the rows pass over it. The next chunk's weights are
 * prefetched (to L2) while this one runs: the block's rows are far apart, too many streams for the hardware. */
static int gemm(const uint16_t *w, const uint32_t *xt, float *out, int32_t tokens, int32_t in_dim, int32_t pairs,
                int32_t out_stride, int32_t row_start, int32_t row_end) {
    int32_t padded = (tokens + 15) / 16 * 16;
    float *c = aya_scratch(AYA_SCRATCH_GEMM_C, (size_t) BLOCK_ROWS * (size_t) padded * sizeof(float));
    uint32_t *wc = aya_scratch(AYA_SCRATCH_GEMM_W, (size_t) BLOCK_ROWS * CHUNK_PAIRS * sizeof(uint32_t));
    if (c == NULL || wc == NULL) return -1;
    for (int32_t r0 = row_start; r0 < row_end; r0 += BLOCK_ROWS) {
        int32_t rows = row_end - r0 < BLOCK_ROWS ? row_end - r0 : BLOCK_ROWS;
        for (int32_t p0 = 0; p0 < pairs; p0 += CHUNK_PAIRS) {
            int32_t np = pairs - p0 < CHUNK_PAIRS ? pairs - p0 : CHUNK_PAIRS;
            copy_chunk(w, in_dim, r0, rows, p0, np, wc);
            /* the next chunk: the next pairs of these rows, else the first pairs of the next rows */
            int32_t next_r0 = p0 + CHUNK_PAIRS < pairs ? r0 : r0 + BLOCK_ROWS;
            int32_t next_p0 = p0 + CHUNK_PAIRS < pairs ? p0 + CHUNK_PAIRS : 0;
            int32_t next_np = pairs - next_p0 < CHUNK_PAIRS ? pairs - next_p0 : CHUNK_PAIRS;
            int32_t next_rows = row_end - next_r0 < BLOCK_ROWS ? row_end - next_r0 : BLOCK_ROWS;
            aya_block_prefetcher pf = { (const char *) (w + (size_t) next_r0 * (size_t) in_dim + 2 * (size_t) next_p0),
                                        (size_t) in_dim * sizeof(uint16_t), next_np * 4 / 64 + 1,
                                        next_r0 < row_end ? next_rows : 0, 0, 0, 1 };
            int32_t row_tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
            int32_t calls = row_tiles * ((tokens + TILE_TOKENS - 1) / TILE_TOKENS);
            int32_t per_call = (pf.rows * pf.lines_per_row + calls - 1) / calls;
            for (int32_t t0 = 0; t0 < tokens; t0 += TILE_TOKENS) {
                int32_t width = tile_tokens(tokens, t0);
                const uint32_t *xp = xt + (size_t) t0 * (size_t) pairs + (size_t) p0 * (size_t) width;
                for (int32_t i0 = 0; i0 < rows; i0 += TILE_ROWS) {
                    aya_prefetch_some(&pf, per_call);
                    const uint32_t *wt = wc + (size_t) i0 * CHUNK_PAIRS;
                    float *ct = c + (size_t) i0 * (size_t) padded + t0;
                    if (width == TILE_TOKENS) micro(wt, np, xp, ct, (size_t) padded, p0 > 0, 2);
                    else micro(wt, np, xp, ct, (size_t) padded, p0 > 0, 1);
                }
            }
        }
        write_block(c, (size_t) padded, rows, tokens, out, out_stride, r0);
    }
    return 0;
}

/* The decode micro-kernel for matvec_loop.h: 32 inputs (16 pairs) per vdpbf16ps; the last partial 32 come from
 * zero-padded copies. */
#define AYA_MV_DECODE_AHEAD 1024 /* decode, 1 thread, from memory: 1.10-1.13x without */
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
    if (tokens <= AYA_MV_FEW_TOKENS) {
        const uint32_t *xb = pack_activations(x, tokens, in_dim, pairs);
        if (xb == NULL) return;
        aya_matvec_tokens(AYA_WEIGHT_BF16, w, xb, (size_t) pairs, out, tokens, in_dim, out_stride, row_start, row_end);
        return;
    }
    const uint32_t *xt = pack_activations_transposed(x, tokens, in_dim, pairs);
    if (xt == NULL) return;
    gemm((const uint16_t *) w, xt, out, tokens, in_dim, pairs, out_stride, row_start, row_end);
}
