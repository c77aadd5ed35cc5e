/* AVX-512 VNNI Q8_0 / Q4_0 matrix products: the AVX2 design (quant_avx2.c) on 64-byte vectors, with vpdpbusd (u8 x s8,
 * four products summed into each int32 lane, no saturation) doing the whole block product:
 *   Q8_0: weights w + 128 (= w ^ 0x80) are unsigned, so sum(w * x) = vpdpbusd(-128 * sum(x), w ^ 0x80, x): exact also
 *         for w = -128.
 *   Q4_0: the nibbles n are unsigned, sum((n - 8) * x) = vpdpbusd(-8 * sum(x), n, x).
 * Main step: four blocks per row as [b0 | b1 | b2 | b3] quarters of one zmm (elements 0..15 in `lo`, 16..31 in `hi`),
 * gathered with word permutes (load_quad), their scales spread to the lanes of their products, so one convert, one
 * scale multiply and one FMA serve four blocks. The activations are regrouped into the matching layout once per call
 * (regroup_activations: values, the -offset * sum(x) term and the scales already in their lanes), so a tile does no
 * per-token shuffling. Two- and one-block steps take block counts not divisible by 4, and Q8_0 decode (see aya_q_tile).
 * Activations are quantized by the AVX2 quantizer (bit-exact with scalar), so results match the other ISAs up to f32
 * summation order. Prefill tiles are 3 rows x 4 tokens: 12 accumulators, 9 registers of row weights and scales and 4
 * of one token's activations fit the 32 zmm (4 x 4 spilled 12 accumulators to the stack: a load and a store per FMA).
 * Decode is 4 rows x 1 token, the rows a quarter of the slice apart. The loops around the tiles are quant_loop.h's.
 * From 16 (Q8_0) or 48 (Q4_0) tokens on (prefill), the packed driver (quant_packed_loop.h) around oct_tile at the
 * end of this file replaces them: both operands packed into one layout, 256 values per step (see there); it also
 * runs Q4_K / Q6_K prefill.
 * Machines without AVX-512: test_avx512_emulated runs this file on SIMDe against scalar. */
#ifdef AYA_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#else
#include <immintrin.h>
#endif

#include "kquant.h"

#ifdef AYA_EMULATE_AVX512
#define AYA_ALWAYS_INLINE static inline /* the emulated intrinsics are big: forced inlining takes minutes to compile */
#else
#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

/* Two blocks' values v0, v1 spread to the lanes their products land in: Q8_0 [v0 x8 | v1 x8], Q4_0 [v0 x4, v1 x4] x2. */
AYA_ALWAYS_INLINE __m512 spread_pair(int q4, __m128 two) {
    const __m512i q8_lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i q4_lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(q4 ? q4_lanes : q8_lanes, _mm512_castps128_ps512(two));
}

AYA_ALWAYS_INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Word indexes (vpermw / vpermt2w) that gather four consecutive blocks' weights into [b0 | b1 | b2 | b3] quarters of
 * one zmm (elements 0..15 of each block in `lo`, 16..31 in `hi`) and spread their fp16 scales to the four int32 lanes
 * their products land in. Word k of a four-block group is at byte 2k: blocks start at words 9j (Q4_0) or 17j (Q8_0).
 *   Q4_0 (72 bytes): sources [group bytes 0..63] and [bytes 56..71]; block j's 16 nibble bytes (words 9j+1 .. 9j+8;
 *        block 3's come from the second source, word 32 = byte 56) hold elements 0..15 low and 16..31 high.
 *   Q8_0 (136 bytes): lo and scales from [bytes 0..63 | 64..127] (block j's first 16 bytes: words 17j+1 .. 17j+8),
 *        hi from [bytes 8..71 | 72..135] (its last 16: words 17j+9 .. 17j+16, minus the 4 words the sources skip). */
static const uint16_t q4_qs_index[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17,
                                          19, 20, 21, 22, 23, 24, 25, 26, 32, 33, 34, 35, 36, 37, 38, 39 };
static const uint16_t q4_scale_index[32] = { 0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27 };
static const uint16_t q8_lo_index[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 18, 19, 20, 21, 22, 23, 24, 25,
                                          35, 36, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58, 59 };
static const uint16_t q8_hi_index[32] = { 5, 6, 7, 8, 9, 10, 11, 12, 22, 23, 24, 25, 26, 27, 28, 29,
                                          39, 40, 41, 42, 43, 44, 45, 46, 56, 57, 58, 59, 60, 61, 62, 63 };
static const uint16_t q8_scale_index[32] = { 0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51 };

/* Four blocks of one row from blk: weights as unsigned bytes (Q4_0 nibbles; Q8_0 w + 128) in lo/hi, scales in dw. */
AYA_ALWAYS_INLINE void load_quad(int q4, const uint8_t *blk, __m512i *lo, __m512i *hi, __m512 *dw) {
    __m512i first = _mm512_loadu_si512((const void *) blk);
    if (q4) {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        __m512i last = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *) (blk + 56)));
        __m512i qs = _mm512_permutex2var_epi16(first, _mm512_loadu_si512((const void *) q4_qs_index), last);
        *lo = _mm512_and_si512(qs, low4);
        *hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), low4);
        *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(
                _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *) q4_scale_index), first)));
    } else {
        const __m512i flip = _mm512_set1_epi8((char) 0x80);
        __m512i second = _mm512_loadu_si512((const void *) (blk + 64));
        __m512i shifted_first = _mm512_loadu_si512((const void *) (blk + 8));
        __m512i shifted_second = _mm512_loadu_si512((const void *) (blk + 72));
        *lo = _mm512_xor_si512(_mm512_permutex2var_epi16(first, _mm512_loadu_si512((const void *) q8_lo_index), second),
                               flip);
        *hi = _mm512_xor_si512(_mm512_permutex2var_epi16(shifted_first, _mm512_loadu_si512((const void *) q8_hi_index),
                                                         shifted_second), flip);
        *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(
                _mm512_permutex2var_epi16(first, _mm512_loadu_si512((const void *) q8_scale_index), second)));
    }
}

/* One token's activations for one four-block step, in the layout of load_quad's weights: quant_loop.h's
 * aya_q_regroup with n = 4 (values, -offset * sum(x) and scales already in their lanes), so a tile does no per-token
 * shuffling. */
typedef struct quad_acts {
    int8_t lo[64], hi[64];
    int32_t minus_offset[16];
    float d[16];
} quad_acts;

/* out[t * out_stride + r] = row r . token t for RM rows (row_bytes apart) x RN tokens from `token`; RM, RN, q4 are
 * compile-time constants at every call site. */
AYA_ALWAYS_INLINE void aya_q_tile(const int q4, const int RM, const int RN, const uint8_t *w, size_t row_bytes,
                                  const aya_q8_acts *acts, int32_t token, int32_t in_dim, float *out,
                                  int32_t out_stride, size_t out_step, size_t ahead) {
    const int32_t blocks = in_dim / AYA_QK;
    const size_t bb = q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES;
    const int8_t *xq = acts->q + (size_t) token * in_dim;
    const float *xd = acts->d + (size_t) token * blocks;
    /* Q8_0: 128 as an unsigned byte (the weight offset); Q4_0: 8 (the nibble offset) */
    const __m512i offset_bytes = _mm512_set1_epi8(q4 ? 8 : (char) 0x80);
    const __m512i low4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char) 0x80);
    __m512 acc[4][4];
    __m256 tail[4][4]; /* an odd last block, 256 bits wide */
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) {
            acc[t][r] = _mm512_setzero_ps();
            tail[t][r] = _mm256_setzero_ps();
        }
    int32_t b = 0;
    const size_t quad_bytes = 4 * bb;
    const int32_t quads = blocks / 4;
    /* Four blocks per step. Q8_0 gathers a row's four blocks with three word permutes, which cost more than they
     * save when one token uses them (decode: ~0.8x the two-block step in cache on Zen 4) and pay off when a prefill
     * tile's four tokens share them. */
    if (q4 || RN > 1)
    for (; b + 4 <= blocks; b += 4) {
        __m512i lo[4], hi[4];
        __m512 dw[4];
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
            if (ahead) { /* both ends of the four blocks (72 bytes: two or three cache lines) */
                _mm_prefetch((const char *) blk + ahead, _MM_HINT_T0);
                _mm_prefetch((const char *) blk + ahead + quad_bytes - 1, _MM_HINT_T0);
            }
            load_quad(q4, blk, &lo[r], &hi[r], &dw[r]);
        }
        for (int t = 0; t < RN; t++) {
            __m512i xlo, xhi, minus;
            __m512 dx;
            if (RN > 1) { /* prefill: the regrouped copy */
                const quad_acts *xt = (const quad_acts *) acts->regrouped + (size_t) (token + t) * quads + b / 4;
                xlo = _mm512_loadu_si512((const void *) xt->lo);
                xhi = _mm512_loadu_si512((const void *) xt->hi);
                minus = _mm512_loadu_si512((const void *) xt->minus_offset);
                dx = _mm512_loadu_ps(xt->d);
            } else { /* decode: the same vectors built from acts, whose 12 KB (in_dim 11008) stay in L1 where the
                      * regrouped 22 KB did not (one thread, down projection: 0.33 -> 0.38 ms) */
                const __m512i quad_lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
                const int8_t *xt = xq + (size_t) b * AYA_QK;
                __m512i x01 = _mm512_loadu_si512((const void *) xt), x23 = _mm512_loadu_si512((const void *) (xt + 64));
                xlo = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)); /* elements 0..15 of b0..b3 */
                xhi = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)); /* elements 16..31 */
                __m128i sums = _mm_loadu_si128((const __m128i *) (acts->sum + (size_t) token * blocks + b));
                __m128i minus4 = _mm_mullo_epi32(sums, _mm_set1_epi32(q4 ? -8 : -128));
                minus = _mm512_maskz_permutexvar_epi32(0x1111, quad_lanes, _mm512_castsi128_si512(minus4));
                dx = _mm512_permutexvar_ps(quad_lanes, _mm512_castps128_ps512(_mm_loadu_ps(xd + b)));
            }
            for (int r = 0; r < RM; r++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(minus, lo[r], xlo), hi[r], xhi);
                acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[t][r]);
            }
        }
    }
    for (; b + 2 <= blocks; b += 2) {
        __m512i wv[4];
        __m512 dw[4];
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
            if (ahead) { /* both ends of the two blocks: a Q8_0 pair (68 bytes) can span three cache lines */
                _mm_prefetch((const char *) blk + ahead, _MM_HINT_T0);
                _mm_prefetch((const char *) blk + ahead + 2 * bb - 1, _MM_HINT_T0);
            }
            if (q4) { /* [b0 low | b1 low | b0 high | b1 high] nibbles */
                __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *) (blk + 2))),
                                                    _mm_loadu_si128((const __m128i *) (blk + bb + 2)), 1);
                __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
                wv[r] = _mm512_and_si512(both, low4);
            } else {  /* [b0 | b1] weights + 128 */
                __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) (blk + 2))),
                                               _mm256_loadu_si256((const __m256i *) (blk + bb + 2)), 1);
                wv[r] = _mm512_xor_si512(v, flip);
            }
            __m128i h = _mm_insert_epi16(_mm_cvtsi32_si128(aya_load_u16(blk)), aya_load_u16(blk + bb), 1);
            dw[r] = spread_pair(q4, _mm_cvtph_ps(h));
        }
        for (int t = 0; t < RN; t++) {
            __m512i x = _mm512_loadu_si512((const void *) (xq + (size_t) t * in_dim + (size_t) b * AYA_QK));
            if (q4) x = _mm512_shuffle_i32x4(x, x, _MM_SHUFFLE(3, 1, 2, 0)); /* [b0 0..15 | b1 0..15 | b0 16.. | b1 16..] */
            __m512i minus = _mm512_sub_epi32(_mm512_setzero_si512(),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset_bytes, x));
            __m512 dx = spread_pair(q4, _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *) (xd + (size_t) t * blocks + b))));
            for (int r = 0; r < RM; r++) {
                __m512i p = _mm512_dpbusd_epi32(minus, wv[r], x);
                acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[t][r]);
            }
        }
    }
    if (b < blocks) { /* odd block count: the last block alone */
        const __m256i low4_256 = _mm256_set1_epi8(0x0F), flip256 = _mm256_set1_epi8((char) 0x80);
        __m256i wv[4];
        float dw[4];
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
            if (q4) {
                __m128i v = _mm_loadu_si128((const __m128i *) (blk + 2));
                wv[r] = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1),
                                         low4_256);
            } else {
                wv[r] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blk + 2)), flip256);
            }
            dw[r] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(aya_load_u16(blk))));
        }
        for (int t = 0; t < RN; t++) {
            __m256i x = _mm256_loadu_si256((const __m256i *) (xq + (size_t) t * in_dim + (size_t) b * AYA_QK));
            __m256i minus = _mm256_sub_epi32(_mm256_setzero_si256(),
                                             _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm512_castsi512_si256(offset_bytes), x));
            float dx = xd[(size_t) t * blocks + b];
            for (int r = 0; r < RM; r++) {
                __m256i p = _mm256_dpbusd_epi32(minus, wv[r], x);
                tail[t][r] = _mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * dx));
            }
        }
    }
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) out[(size_t) t * out_stride + (size_t) r * out_step] = _mm512_reduce_add_ps(acc[t][r]) + hsum256(tail[t][r]);
}

/* the driver (decode and prefill loops) around aya_q_tile */
#define AYA_Q_TILE_TOKENS 4
#define AYA_Q_DECODE_ROWS(q4) 4 /* decode: four rows a quarter of the slice apart (quant_loop.h) */
#define AYA_Q_TILE_ROWS 3
static int regroup_activations(int q4, aya_q8_acts *acts, int32_t tokens, int32_t in_dim);
#define AYA_Q_PREPARE regroup_activations
#include "quant_loop.h"

/* Q4_0 nibble = w + 8, Q8_0 unsigned byte = w + 128: the offset term is -offset * sum(x). */
static int regroup_activations(int q4, aya_q8_acts *acts, int32_t tokens, int32_t in_dim) {
    if (tokens == 1) return 0; /* decode (one-token tiles) reads acts itself: see aya_q_tile */
    return aya_q_regroup(acts, tokens, in_dim, 4, q4 ? -8 : -128);
}

/* ---- Prefill of many tokens: 256 values per step, each int32 lane one group of values with one scale ----
 * The tiles above spend, per row, token and four blocks, two vpdpbusd and three f32 operations (convert, scale
 * multiply, FMA), plus word permutes per row to gather its blocks. Here both operands are first copied into one
 * layout of 256 values per "oct" (four zmm of bytes), arranged so that each int32 lane of the four vpdpbusd sums
 * values of one scale group, and one convert, one scale multiply and one FMA serve 256 multiply-adds:
 *   Q8_0 / Q4_0 (eight 32-value blocks): vector v holds values 8v .. 8v + 7 of each block, block j in qword j, so
 *     lanes 2j and 2j + 1 belong to block j. Weights become unsigned (w + 128; Q4_0 nibbles n + 120 = (n - 8) + 128)
 *     and activations carry -128 * (their lane's sum) as each lane's starting value: sum(w * x) = vpdpbusd(-128 *
 *     sum(x), w + 128, x), exact. Blocks past in_dim (the last oct) are zero with zero scales.
 *   Q4_K / Q6_K (one 256-value super-block of sixteen 16-value groups): vector v holds values 4v .. 4v + 3 of each
 *     group, group l in lane l. A value is S_l * q - M_l with q unsigned (Q4_K: q 0..15, S = d * scale, M = dmin *
 *     min of its 32-value sub-block; Q6_K: q 0..63, S = d * scale, M = 32 * S), so the lane's sum is S_l * sum(q *
 *     x) - M_l * sum(x): the second term is one more FMA with the activations' f32 group sums (Q8_K's bsums, as the
 *     row kernels use them). Activations are Q8_K like the row kernels', so only the f32 summation order differs.
 * Weights are packed per panel of rows and k chunk into the calling thread's scratch (each weight byte once per
 * call), activations once per call; weights stay in registers, activations are read as memory operands. Per lane at
 * most 16 products of 255 x 127 plus the offset: far inside int32 and exact in f32. */
enum {
    OCT_BLOCKS = 8,                     /* Q8_0 / Q4_0 blocks per oct */
    OCT_W_BYTES = 4 * 64 + 16 * 4,      /* a row's oct: u8 values [4][64], f32 scales [16] */
    OCT_WK_BYTES = 4 * 64 + 2 * 16 * 4, /* ... and for Q4_K / Q6_K f32 offsets M [16] */
    OCT_X_BYTES = 4 * 64 + 2 * 16 * 4,  /* a token's oct: s8 values [4][64], the offset term [16] (int32 -128 x lane
                                           sums, or for k-quants f32 -d x group sums), f32 scales [16] */
    OCT_ROWS = 2,                       /* tile: 2 rows x 8 tokens: 16 accumulators, 8 weight vectors, 2 scales, 4
                                           temporaries (2 x 6 ran at 0.93x) */
    OCT_TOKENS = 8,
    OCT_CHUNK = 8,                      /* octs per k chunk (2048 inputs): 8 tokens' chunk (24 KB) stays in L1 */
    /* fewer tokens: packing the panels costs more than it saves (one thread, 2048 x 2048: Q8_0 at 16 tokens 233 vs
     * 214 GFLOP/s; Q4_0, whose packing writes 2.7x its bytes, 249 vs 315 at 16, 297 vs 313 at 32, 312-328 vs 310 at
     * 48); k-quants: AYA_OCT_MIN_TOKENS_K in kquant.h */
    OCT_MIN_TOKENS_Q8_0 = 16,
    OCT_MIN_TOKENS_Q4_0 = 48
};

/* Eight blocks' 32 values (b[j], 256 bits each) into the oct layout: out[v] qword j = b[j] qword v. */
AYA_ALWAYS_INLINE void oct_transpose(const __m256i b[8], __m512i out[4]) {
    __m512i z01 = _mm512_inserti64x4(_mm512_castsi256_si512(b[0]), b[1], 1);
    __m512i z23 = _mm512_inserti64x4(_mm512_castsi256_si512(b[2]), b[3], 1);
    __m512i z45 = _mm512_inserti64x4(_mm512_castsi256_si512(b[4]), b[5], 1);
    __m512i z67 = _mm512_inserti64x4(_mm512_castsi256_si512(b[6]), b[7], 1);
    for (int v = 0; v < 4; v++) {
        const __m512i pick = _mm512_setr_epi64(v, 4 + v, 8 + v, 12 + v, v, 4 + v, 8 + v, 12 + v);
        __m512i low = _mm512_permutex2var_epi64(z01, pick, z23), high = _mm512_permutex2var_epi64(z45, pick, z67);
        out[v] = _mm512_inserti64x4(low, _mm512_castsi512_si256(high), 1);
    }
}

/* 256 values in order (in[n]: values 64n .. 64n + 63) into the k-quant layout: out[v] int32 lane l = values 16l + 4v
 * .. + 3. Within each input, a 4 x 4 transpose of its dwords (dword 4m + v to 4v + m) puts group 4n + m's dword v in
 * 128-bit lane v; then a 4 x 4 transpose of 128-bit lanes across the four. */
AYA_ALWAYS_INLINE void oct_transpose_groups(const __m512i in[4], __m512i out[4]) {
    const __m512i dwords = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i p[4];
    for (int n = 0; n < 4; n++) p[n] = _mm512_permutexvar_epi32(dwords, in[n]);
    __m512i t0 = _mm512_shuffle_i32x4(p[0], p[1], 0x44), t1 = _mm512_shuffle_i32x4(p[0], p[1], 0xEE);
    __m512i t2 = _mm512_shuffle_i32x4(p[2], p[3], 0x44), t3 = _mm512_shuffle_i32x4(p[2], p[3], 0xEE);
    out[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);
    out[1] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
    out[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);
    out[3] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

/* Eight scales into lanes 2j, 2j + 1. */
AYA_ALWAYS_INLINE __m512 oct_spread(__m256 d) {
    const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(d));
}

/* h with its 16-bit lane j set to v (j is a constant once the caller's loop is unrolled). */
AYA_ALWAYS_INLINE __m128i insert_u16(__m128i h, int j, uint16_t v) {
    switch (j) {
        case 0: return _mm_insert_epi16(h, v, 0);
        case 1: return _mm_insert_epi16(h, v, 1);
        case 2: return _mm_insert_epi16(h, v, 2);
        case 3: return _mm_insert_epi16(h, v, 3);
        case 4: return _mm_insert_epi16(h, v, 4);
        case 5: return _mm_insert_epi16(h, v, 5);
        case 6: return _mm_insert_epi16(h, v, 6);
        default: return _mm_insert_epi16(h, v, 7);
    }
}

/* One row's Q8_0 / Q4_0 oct (blocks from `first`, those at or past `blocks` zero) into d. */
AYA_ALWAYS_INLINE void oct_pack_blocks(int q4, const uint8_t *row, int32_t first, int32_t blocks, uint8_t *d) {
    const size_t bb = q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES;
    const __m256i flip = _mm256_set1_epi8((char) 0x80), low4 = _mm256_set1_epi8(0x0F), plus120 = _mm256_set1_epi8(120);
    __m256i b[8];
    __m128i h = _mm_setzero_si128(); /* the scales, inserted: 16-bit stores and a 128-bit load stalled */
    for (int j = 0; j < 8; j++) {
        int32_t block = first + j;
        if (block >= blocks) { b[j] = _mm256_setzero_si256(); continue; }
        const uint8_t *blk = row + (size_t) block * bb;
        h = insert_u16(h, j, aya_load_u16(blk));
        if (q4) { /* elements 0..15 are the low nibbles, 16..31 the high ones */
            __m128i qs = _mm_loadu_si128((const __m128i *) (blk + 2));
            __m256i n = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(qs), _mm_srli_epi16(qs, 4), 1),
                                         low4);
            b[j] = _mm256_add_epi8(n, plus120);
        } else {
            b[j] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blk + 2)), flip);
        }
    }
    __m512i v[4];
    oct_transpose(b, v);
    for (int i = 0; i < 4; i++) _mm512_storeu_si512((void *) (d + 64 * i), v[i]);
    _mm512_storeu_ps((float *) (d + 256), oct_spread(_mm256_cvtph_ps(h)));
}

/* One Q4_K / Q6_K super-block (blk) as an oct into d: q in the group layout, then S [16] and M [16]. */
AYA_ALWAYS_INLINE void oct_pack_super_block(int kind, const uint8_t *blk, uint8_t *d) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
    __m512i in[4], v[4];
    float s[16], m[16];
    if (kind == AYA_WEIGHT_Q4_K) { /* 32 bytes per 64 values: the first 32 in the low nibbles, the next 32 in the high ones */
        for (int g = 0; g < 4; g++) {
            __m256i q = _mm256_loadu_si256((const __m256i *) (blk + 16 + 32 * g));
            __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            in[g] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
    } else { /* Q6_K: per 128 values, 64 bytes of low 4 bits (values l and l + 64 share a byte) and 32 of 2 high bits */
        for (int half = 0; half < 2; half++) {
            __m256i a = _mm256_loadu_si256((const __m256i *) (blk + 64 * half));
            __m256i b = _mm256_loadu_si256((const __m256i *) (blk + 64 * half + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *) (blk + 128 + 32 * half));
            __m256i c[4];
            for (int k = 0; k < 4; k++) { /* values 128 half + 32k .. + 31 */
                __m256i low = k == 0 ? a : k == 1 ? b : k == 2 ? _mm256_srli_epi16(a, 4) : _mm256_srli_epi16(b, 4);
                c[k] = _mm256_or_si256(_mm256_and_si256(low, low4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), two), 4));
            }
            in[2 * half] = _mm512_inserti64x4(_mm512_castsi256_si512(c[0]), c[1], 1);
            in[2 * half + 1] = _mm512_inserti64x4(_mm512_castsi256_si512(c[2]), c[3], 1);
        }
    }
    aya_k_group_scales(kind, blk, s, m); /* group l in lane l */
    oct_transpose_groups(in, v);
    for (int i = 0; i < 4; i++) _mm512_storeu_si512((void *) (d + 64 * i), v[i]);
    _mm512_storeu_ps((float *) (d + 256), _mm512_loadu_ps(s));
    _mm512_storeu_ps((float *) (d + 320), _mm512_loadu_ps(m));
}

/* Packs rows [0, rows) of w (row_bytes apart) x octs [o0, o0 + octs) into dst[row][oct]. */
static void oct_pack_weights(int kind, const uint8_t *w, size_t row_bytes, int32_t rows, int32_t blocks, int32_t o0,
                             int32_t octs, uint8_t *dst) {
    const int k = kind >= AYA_WEIGHT_Q4_K;
    const size_t bb = aya_block_bytes(kind), oct_bytes = k ? bb : OCT_BLOCKS * bb, w_bytes = k ? OCT_WK_BYTES : OCT_W_BYTES;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t o = 0; o < octs; o++) {
            uint8_t *d = dst + ((size_t) r * octs + o) * w_bytes;
            /* the same oct three rows on (read once, from DRAM: the panel's packing stalled on them; past the panel
             * these are the next panel's rows, and a prefetch past the weights does not fault) */
            const uint8_t *at = w + (size_t) r * row_bytes + (size_t) (o0 + o) * oct_bytes;
            for (size_t line = 0; line < oct_bytes; line += 64) _mm_prefetch((const char *) at + 3 * row_bytes + line, _MM_HINT_T0);
            if (k) oct_pack_super_block(kind, at, d);
            else oct_pack_blocks(kind == AYA_WEIGHT_Q4_0, w + (size_t) r * row_bytes, (o0 + o) * OCT_BLOCKS, blocks, d);
        }
}

/* Packs every token's Q8_0 activations into dst[token][oct] (OCT_X_BYTES each). */
static void oct_pack_activations(const aya_q8_acts *acts, int32_t tokens, int32_t blocks, int32_t octs, uint8_t *dst) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t o = 0; o < octs; o++) {
            uint8_t *d = dst + ((size_t) t * octs + o) * OCT_X_BYTES;
            __m256i b[8];
            float scale[8];
            for (int j = 0; j < 8; j++) {
                int32_t block = o * OCT_BLOCKS + j;
                int live = block < blocks;
                b[j] = live ? _mm256_loadu_si256((const __m256i *) (acts->q + ((size_t) t * blocks + block) * AYA_QK))
                            : _mm256_setzero_si256();
                scale[j] = live ? acts->d[(size_t) t * blocks + block] : 0.0f;
            }
            __m512i v[4], sums = _mm512_setzero_si512();
            oct_transpose(b, v);
            for (int i = 0; i < 4; i++) {
                _mm512_storeu_si512((void *) (d + 64 * i), v[i]);
                sums = _mm512_dpbusd_epi32(sums, ones, v[i]);
            }
            __m512i minus = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 7)); /* -128 x sums */
            _mm512_storeu_si512((void *) (d + 256), minus);
            _mm512_storeu_ps((float *) (d + 320), oct_spread(_mm256_loadu_ps(scale)));
        }
}

/* Packs every token's Q8_K activations (one oct per super-block) into dst[token][oct] (OCT_X_BYTES each). */
static void oct_pack_activations_k(const aya_q8k_acts *acts, int32_t tokens, int32_t octs, uint8_t *dst) {
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t o = 0; o < octs; o++) {
            size_t xb = (size_t) t * octs + o;
            uint8_t *d = dst + xb * OCT_X_BYTES;
            __m512i in[4], v[4];
            for (int n = 0; n < 4; n++) in[n] = _mm512_loadu_si512((const void *) (acts->q + xb * AYA_QK_K + 64 * n));
            oct_transpose_groups(in, v);
            for (int i = 0; i < 4; i++) _mm512_storeu_si512((void *) (d + 64 * i), v[i]);
            __m512 sums = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *) (acts->bsum + xb * 16))));
            _mm512_storeu_ps((float *) (d + 256), _mm512_mul_ps(sums, _mm512_set1_ps(-acts->d[xb])));
            _mm512_storeu_ps((float *) (d + 320), _mm512_set1_ps(acts->d[xb]));
        }
}

/* out[t * out_stride + r] (= or +=, per accumulate) the products of RM packed rows (w_stride apart) and RN packed
 * tokens (x_stride apart) over octs [0, octs). RM, RN and K (k-quant layout: the M term) are compile-time constants
 * at every call site. */
AYA_ALWAYS_INLINE void oct_tile(const int RM, const int RN, const int K, const uint8_t *w, size_t w_stride,
                                const uint8_t *x, size_t x_stride, int32_t octs, float *out, int32_t out_stride,
                                int accumulate) {
    const size_t w_bytes = K ? OCT_WK_BYTES : OCT_W_BYTES;
    __m512 acc[OCT_TOKENS][OCT_ROWS];
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) acc[t][r] = _mm512_setzero_ps();
    for (int32_t o = 0; o < octs; o++) {
        __m512i wv[OCT_ROWS][4];
        __m512 dw[OCT_ROWS];
        for (int r = 0; r < RM; r++) {
            const uint8_t *wr = w + r * w_stride + (size_t) o * w_bytes;
            for (int i = 0; i < 4; i++) wv[r][i] = _mm512_loadu_si512((const void *) (wr + 64 * i));
            dw[r] = _mm512_loadu_ps((const float *) (wr + 256));
        }
        for (int t = 0; t < RN; t++) {
            const uint8_t *xt = x + t * x_stride + (size_t) o * OCT_X_BYTES;
            __m512i start = K ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *) (xt + 256));
            __m512 dx = _mm512_loadu_ps((const float *) (xt + 320));
            for (int r = 0; r < RM; r++) {
                __m512i p = start;
                for (int i = 0; i < 4; i++)
                    p = _mm512_dpbusd_epi32(p, wv[r][i], _mm512_loadu_si512((const void *) (xt + 64 * i)));
                acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[t][r]);
                if (K) { /* - M x the token's scaled group sums */
                    const float *m = (const float *) (w + r * w_stride + (size_t) o * w_bytes + 320);
                    acc[t][r] = _mm512_fmadd_ps(_mm512_loadu_ps(m), _mm512_loadu_ps((const float *) (xt + 256)), acc[t][r]);
                }
            }
        }
    }
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) {
            float s = _mm512_reduce_add_ps(acc[t][r]), *o = out + (size_t) t * out_stride + r;
            *o = accumulate ? *o + s : s;
        }
}

/* the packed prefill driver (quant_packed_loop.h) around oct_tile */
#define AYA_P_BLOCKS OCT_BLOCKS
#define AYA_P_W_BYTES OCT_W_BYTES
#define AYA_P_WK_BYTES OCT_WK_BYTES
#define AYA_P_X_BYTES OCT_X_BYTES
#define AYA_P_ROWS OCT_ROWS
#define AYA_P_TOKENS OCT_TOKENS
#define AYA_P_CHUNK OCT_CHUNK
#define aya_p_pack_weights oct_pack_weights
#define aya_p_pack_activations oct_pack_activations
#define aya_p_pack_activations_k oct_pack_activations_k
#define aya_p_tile(kind, RM, RN, ...) \
    ((kind) >= AYA_WEIGHT_Q4_K ? oct_tile(RM, RN, 1, __VA_ARGS__) : oct_tile(RM, RN, 0, __VA_ARGS__))
#include "quant_packed_loop.h"

void aya_matmul_q8_0_avx512vnni(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens >= OCT_MIN_TOKENS_Q8_0) aya_p_matmul(AYA_WEIGHT_Q8_0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    else aya_q_matmul(0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_0_avx512vnni(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens >= OCT_MIN_TOKENS_Q4_0) aya_p_matmul(AYA_WEIGHT_Q4_0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    else aya_q_matmul(1, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

/* Q4_K / Q6_K from AYA_OCT_MIN_TOKENS_K tokens on (kquant_avx512.c picks them). */
void aya_matmul_q4_k_avx512oct(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                               int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_p_matmul(AYA_WEIGHT_Q4_K, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q6_k_avx512oct(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                               int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_p_matmul(AYA_WEIGHT_Q6_K, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

#ifndef AYA_EMULATE_AVX512
/* The avx512 table's entries: VNNI where the CPU has it (Ice Lake, Zen 4 and later), else the AVX2 kernels. */
void aya_matmul_q8_0_avx512(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (__builtin_cpu_supports("avx512vnni")) {
        aya_matmul_q8_0_avx512vnni(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    } else {
        aya_matmul_q8_0_avx2(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    }
}

void aya_matmul_q4_0_avx512(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (__builtin_cpu_supports("avx512vnni")) {
        aya_matmul_q4_0_avx512vnni(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    } else {
        aya_matmul_q4_0_avx2(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    }
}
#endif
