/* AVX2 Q8_0 / Q4_0 matrix products with integer dot products, llama.cpp style. Activations are quantized per token to
 * Q8_0 (aya_quantize_activations_avx2: bit-exact with the scalar quantizer), then each 32-weight block pair is an exact
 * integer dot product in 8 int32 lanes, converted to f32 and FMA'd with d_w * d_x:
 *   Q8_0: |w| (vpsignb) x x-with-w's-sign (vpsignb) -> vpmaddubsw (u8 x s8 pairs -> s16) -> vpmaddwd by 1 (-> s32);
 *   Q4_0: the nibbles n (0..15) are already unsigned: vpmaddubsw(n, x) -> vpmaddwd by 1, minus 8 * sum(x) (the -8 offset
 *         of every weight, one subtraction per block instead of two vpsignb).
 * Everything runs as a register tile of RM weight rows x RN tokens: each weight block is loaded (and Q4_0 unpacked)
 * once for RN tokens, each activation block once for RM rows. The loops around the tiles are quant_loop.h's (decode:
 * 4 x 1 tiles of rows a quarter of the slice apart; 2-5 tokens: 4 x 3 tiles over a panel of rows that stays in L2).
 * From 6 tokens on, quad_tile at the end of this file, in quant_packed_loop.h's driver, replaces them: both operands
 * packed into one layout, four blocks per step (see there). Block scales widen with F16C. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_internal.h"
#include "kquant.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------------------------ activation quantization */

AYA_ALWAYS_INLINE float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* roundf (halves away from zero), exactly: truncate, then step away from zero when the exact remainder is >= 0.5. */
AYA_ALWAYS_INLINE __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 rest = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t)); /* v - trunc(v) is exact */
    __m256 step = _mm256_and_ps(_mm256_cmp_ps(rest, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f)));
    return _mm256_add_ps(t, step);
}

int aya_quantize_activations_avx2(const float *x, int32_t tokens, int32_t in_dim, aya_q8_acts *acts) {
    size_t n = (size_t) tokens * (size_t) in_dim;
    int8_t *q;
    float *scales;
    int32_t *sums;
    if (aya_q8_buffers(n, &q, &scales, &sums) != 0) return -1;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); /* undoes the lane interleaving of the packs */
    for (size_t b = 0; b < n / AYA_QK; b++) {
        const float *xb = x + b * AYA_QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        float d = hmax(m) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        scales[b] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT)));
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v0, vid)));
        __m256i i1 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v1, vid)));
        __m256i i2 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v2, vid)));
        __m256i i3 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v3, vid)));
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        bytes = _mm256_permutevar8x32_epi32(bytes, order);
        _mm256_storeu_si256((__m256i *) (q + b * AYA_QK), bytes);
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes), _mm256_set1_epi16(1));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        sums[b] = _mm_cvtsi128_si32(s4);
    }
    acts->q = q;
    acts->d = scales;
    acts->sum = sums;
    return 0;
}

/* ----------------------------------------------------------------------------------------------- block products */

AYA_ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 32 weights of a Q4_0 block as unsigned nibbles 0..15: low nibbles are elements 0..15, high nibbles 16..31. */
AYA_ALWAYS_INLINE __m256i load_nibbles(const uint8_t *qs) {
    __m128i packed = _mm_loadu_si128((const __m128i *) qs);
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* Q8_0: 8 s32 partial sums of w[j] * x[j], given |w| (w may be -128: |w| = 128 as an unsigned byte; x never is). */
AYA_ALWAYS_INLINE __m256i dot_q8(__m256i w, __m256i abs_w, __m256i x) {
    __m256i pairs = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w)); /* |pair sum| <= 2 * 128 * 127: no saturation */
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* Q4_0: 8 s32 lanes summing to sum((n[j] - 8) * x[j]); offset holds 8 * sum(x) in lane 0. */
AYA_ALWAYS_INLINE __m256i dot_q4(__m256i nibbles, __m256i x, __m256i offset) {
    __m256i pairs = _mm256_maddubs_epi16(nibbles, x); /* |pair sum| <= 2 * 15 * 127 */
    return _mm256_sub_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), offset);
}

/* The f16 scales of four consecutive blocks (bb bytes each) as four floats: the halves gathered in a general
 * register by scalar loads and shifts, where the vector pipes are the limit of the decode loops. */
AYA_ALWAYS_INLINE __m128 quad_scales(const uint8_t *blk, size_t bb) {
    uint64_t d = (uint64_t) aya_load_u16(blk) | (uint64_t) aya_load_u16(blk + bb) << 16
                 | (uint64_t) aya_load_u16(blk + 2 * bb) << 32 | (uint64_t) aya_load_u16(blk + 3 * bb) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long) d));
}

/* Eight consecutive Q4_0 blocks' scales in the lane order [d0 d2 d4 d6 | d1 d3 d5 d7] (one vcvtph2ps). */
AYA_ALWAYS_INLINE __m256 oct_scales(const uint8_t *blk, size_t bb) {
    uint64_t even = 0, odd = 0;
    for (int i = 0; i < 4; i++) {
        even |= (uint64_t) aya_load_u16(blk + 2 * i * bb) << 16 * i;
        odd |= (uint64_t) aya_load_u16(blk + (2 * i + 1) * bb) << 16 * i;
    }
    return _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128((long long) even), (long long) odd, 1));
}

/* Two consecutive Q4_0 blocks' scales as [d0 x4 | d1 x4] (the lane layout of a block-pair product). */
AYA_ALWAYS_INLINE __m256 pair_scales(const uint8_t *blk0, const uint8_t *blk1) {
    __m128i h = _mm_insert_epi16(_mm_cvtsi32_si128(aya_load_u16(blk0)), aya_load_u16(blk1), 1);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(h)), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
}

/* One token's activations for four Q4_0 blocks, in the layouts of the tile's weights, so that a tile does no
 * per-token shuffling or scalar inserts (regroup_activations, once per call):
 *   pair h (blocks 2h, 2h + 1), for the two-block step: values [b 0..15 | b' 0..15] and [b 16..31 | b' 16..31],
 *   8 * sum(x) in lanes 0 and 4 and the scales in lanes [b x4 | b' x4];
 *   for the eight-block step (decode), in every other quad, which folds the four pairs' int32 lanes into
 *   [b0 b2 b4 b6 | b1 b3 b5 b7] of this quad's and the next one's blocks: 8 * sum(x) and the scales in that order. */
typedef struct quad_acts {
    int8_t lo[2][32], hi[2][32];
    int32_t offset[2][8];
    float d[2][8];
    int32_t offset8[8]; /* quads 0, 2, 4, ..: 8 * sum(x) of this quad's and the next one's blocks, one per lane */
    float d8[8];
} quad_acts;

/* The lines of one Q4_0 decode step's bytes of a row (8 x 18 = 144 bytes: the three lines from p on, with the next
 * step's first, hold them all). */
AYA_ALWAYS_INLINE void prefetch_step(const uint8_t *p) {
    _mm_prefetch((const char *) p, _MM_HINT_T0);
    _mm_prefetch((const char *) p + 64, _MM_HINT_T0);
    _mm_prefetch((const char *) p + 128, _MM_HINT_T0);
}

/* out[t * out_stride + r] = row r . token t for RM rows from w (row_bytes apart) and RN tokens of acts (from token
 * `token`). RM, RN and q4 are compile-time constants at every call site, so the tile lives in registers.
 * Q4_0 goes two blocks per step (four in decode, two pairs): one 32-byte load holds a pair's nibbles, the and/shift
 * gives [b0 low | b1 low] and [b0 high | b1 high]; the activations come in the matching layout from
 * regroup_activations (once per call). Q8_0 goes four blocks per step, then one at a time. The vector pipes are the
 * limit of these loops (the decode reads its weights from memory at about their speed), so work that the integer
 * pipes or the load ports can do goes there (quad_scales, the Q8_0 scales broadcast from memory). */
AYA_ALWAYS_INLINE void aya_q_tile(const int q4, const int RM, const int RN, const uint8_t *w, size_t row_bytes,
                                  const aya_q8_acts *acts, int32_t token, int32_t in_dim, float *out,
                                  int32_t out_stride, size_t out_step, size_t ahead) {
    const int32_t blocks = in_dim / AYA_QK;
    const size_t bb = q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES;
    const int8_t *xq = acts->q + (size_t) token * in_dim;
    const float *xd = acts->d + (size_t) token * blocks;
    const int32_t *xsum = acts->sum + (size_t) token * blocks;
    __m256 acc[4][4];
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) acc[t][r] = _mm256_setzero_ps();
    int32_t b = 0;
    if (q4) {
        const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
        const int32_t quads = (blocks + 3) / 4;
        const quad_acts *xa = (const quad_acts *) acts->regrouped + (size_t) token * quads;
        /* Decode: eight blocks per step, one offset, convert, scale product and FMA for all eight: each pair's int32
         * lanes [b x4 | b' x4] folded by blends, vpshufd and adds into [b0 b2 b4 b6 | b1 b3 b5 b7], every block's whole
         * sum in one lane (four blocks per step left each block in two lanes, with a convert, scale product and FMA per
         * four blocks: ~1.05x on Zen 3). The activations are the second operands, read from L1. */
        for (; RN == 1 && b + 8 <= blocks; b += 8) {
            const quad_acts *xt = xa + b / 4;
            for (int r = 0; r < RM; r++) {
                const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
                if (ahead) prefetch_step(blk + ahead);
                __m256i half[2]; /* [b0 b2 b0 b2 | b1 b3 b1 b3] (two lanes per block) of blocks 0..3 and 4..7 */
                for (int q = 0; q < 2; q++) {
                    __m256i p[2];
                    for (int h = 0; h < 2; h++) {
                        const uint8_t *pair = blk + (4 * q + 2 * h) * bb;
                        __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *) (pair + 2))),
                                                            _mm_loadu_si128((const __m128i *) (pair + bb + 2)), 1);
                        __m256i s = _mm256_add_epi16(
                            _mm256_maddubs_epi16(_mm256_and_si256(v, low4), _mm256_loadu_si256((const __m256i *) xt[q].lo[h])),
                            _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                                                 _mm256_loadu_si256((const __m256i *) xt[q].hi[h])));
                        p[h] = _mm256_madd_epi16(s, ones); /* |s| <= 4 * 15 * 127 */
                    }
                    __m256i even = _mm256_blend_epi32(p[0], p[1], 0xAA), odd = _mm256_blend_epi32(p[1], p[0], 0xAA);
                    half[q] = _mm256_add_epi32(even, _mm256_shuffle_epi32(odd, 0xB1));
                }
                __m256i lo = _mm256_blend_epi32(half[0], half[1], 0xCC), hi = _mm256_blend_epi32(half[1], half[0], 0xCC);
                __m256i p = _mm256_sub_epi32(_mm256_add_epi32(lo, _mm256_shuffle_epi32(hi, 0x4E)),
                                             _mm256_loadu_si256((const __m256i *) xt->offset8));
                acc[0][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(oct_scales(blk, bb), _mm256_loadu_ps(xt->d8)),
                                            acc[0][r]);
            }
        }
        for (; b + 2 <= blocks; b += 2) {
            __m256i lo[4], hi[4];
            __m256 dw[4];
            for (int r = 0; r < RM; r++) {
                const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
                __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *) (blk + 2))),
                                                    _mm_loadu_si128((const __m128i *) (blk + bb + 2)), 1);
                lo[r] = _mm256_and_si256(v, low4);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
                dw[r] = pair_scales(blk, blk + bb);
            }
            for (int t = 0; t < RN; t++) {
                const quad_acts *xq4 = xa + (size_t) t * quads + b / 4;
                const int h = (b / 2) % 2;
                __m256i xlo = _mm256_loadu_si256((const __m256i *) xq4->lo[h]), xhi = _mm256_loadu_si256((const __m256i *) xq4->hi[h]);
                __m256i offset = _mm256_loadu_si256((const __m256i *) xq4->offset[h]);
                __m256 dx = _mm256_loadu_ps(xq4->d[h]);
                for (int r = 0; r < RM; r++) {
                    __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo[r], xlo), _mm256_maddubs_epi16(hi[r], xhi));
                    __m256i p = _mm256_sub_epi32(_mm256_madd_epi16(pairs, ones), offset); /* |pairs| <= 4 * 15 * 127 */
                    acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[t][r]);
                }
            }
        }
    }
    if (!q4) {
        /* Q8_0, four blocks per step: each row's four f16 scales converted at once and multiplied by each token's
         * four activation scales in one vector; the products are stored and each block's is broadcast from memory
         * (a load, not a shuffle: the vector pipes are the limit). */
        for (; b + 4 <= blocks; b += 4) {
            float scale[4][4][4]; /* [token][row][block] */
            for (int r = 0; r < RM; r++) {
                const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
                if (ahead) prefetch_step(blk + ahead);
                __m128 dw = quad_scales(blk, bb);
                for (int t = 0; t < RN; t++)
                    _mm_storeu_ps(scale[t][r], _mm_mul_ps(dw, _mm_loadu_ps(xd + (size_t) t * blocks + b)));
            }
            for (int j = 0; j < 4; j++) {
                __m256i wv[4], aw[4];
                for (int r = 0; r < RM; r++) {
                    wv[r] = _mm256_loadu_si256((const __m256i *) (w + r * row_bytes + (size_t) (b + j) * bb + 2));
                    aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
                }
                for (int t = 0; t < RN; t++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *) (xq + (size_t) t * in_dim + (size_t) (b + j) * AYA_QK));
                    for (int r = 0; r < RM; r++)
                        acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_q8(wv[r], aw[r], x)),
                                                    _mm256_broadcast_ss(&scale[t][r][j]), acc[t][r]);
                }
            }
        }
    }
    for (; b < blocks; b++) { /* the blocks after the last whole step */
        __m256i wv[4], aw[4];
        float dw[4];
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = w + r * row_bytes + (size_t) b * bb;
            dw[r] = _cvtsh_ss(aya_load_u16(blk));
            if (q4) {
                wv[r] = load_nibbles(blk + 2);
            } else {
                wv[r] = _mm256_loadu_si256((const __m256i *) (blk + 2));
                aw[r] = _mm256_sign_epi8(wv[r], wv[r]);
            }
        }
        for (int t = 0; t < RN; t++) {
            __m256i x = _mm256_loadu_si256((const __m256i *) (xq + (size_t) t * in_dim + (size_t) b * AYA_QK));
            float dx = xd[(size_t) t * blocks + b];
            __m256i offset = q4 ? _mm256_setr_epi32(8 * xsum[(size_t) t * blocks + b], 0, 0, 0, 0, 0, 0, 0)
                                : _mm256_setzero_si256();
            for (int r = 0; r < RM; r++) {
                __m256i p = q4 ? dot_q4(wv[r], x, offset) : dot_q8(wv[r], aw[r], x);
                acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * dx), acc[t][r]);
            }
        }
    }
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) out[(size_t) t * out_stride + (size_t) r * out_step] = hsum(acc[t][r]);
}

/* the driver (decode and prefill loops) around aya_q_tile */
#define AYA_Q_TILE_TOKENS 3
/* Decode: four rows per tile, a quarter of the slice apart, each stream prefetched 1 KiB ahead (prefetch_step), for both
 * types. Q4_0: its eight-block step reads the activations from L1 and keeps no row's blocks in registers (one thread on
 * Zen 3 against one row: two rows 1.03-1.08x, four 1.11-1.20x; the prefetch 1.0-1.2x from memory; sections 19 and 21 of
 * docs/performance-native.md). Q8_0 (two rows before): one thread from memory 1.13-1.31x (section 21); full size on
 * Zen 3 a higher share of the read bound in 6 of 9 pairs, quiet pairs 0.99-1.19x (section 23). */
#define AYA_Q_DECODE_ROWS(q4) 4
#define AYA_Q_DECODE_AHEAD(q4) 1024
static int regroup_activations(int q4, aya_q8_acts *acts, int32_t tokens, int32_t in_dim);
#define AYA_Q_PREPARE regroup_activations
#include "quant_loop.h"

/* Q4_0 only (Q8_0 steps one block at a time on acts itself): every token's quad_acts, the last quad's missing
 * blocks zero. */
static int regroup_activations(int q4, aya_q8_acts *acts, int32_t tokens, int32_t in_dim) {
    if (!q4) return 0;
    const int32_t blocks = in_dim / AYA_QK, quads = (blocks + 3) / 4;
    quad_acts *all = aya_q8_regrouped((size_t) tokens * (size_t) quads * sizeof(quad_acts) + 1);
    if (all == NULL) return -1;
    memset(all, 0, (size_t) tokens * (size_t) quads * sizeof(quad_acts));
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t b = 0; b < blocks; b++) {
            quad_acts *qa = all + (size_t) t * quads + b / 4;
            size_t xb = (size_t) t * blocks + b;
            int j = b % 4, h = j / 2, side = j % 2; /* pair h, 16-byte half `side` */
            memcpy(qa->lo[h] + 16 * side, acts->q + xb * AYA_QK, 16);
            memcpy(qa->hi[h] + 16 * side, acts->q + xb * AYA_QK + 16, 16);
            qa->offset[h][4 * side] = 8 * acts->sum[xb];
            for (int i = 0; i < 4; i++) qa->d[h][4 * side + i] = acts->d[xb];
            quad_acts *oct = all + (size_t) t * quads + b / 8 * 2;
            int lane = 4 * (b % 2) + b % 8 / 2; /* [b0 b2 b4 b6 | b1 b3 b5 b7] */
            oct->offset8[lane] = 8 * acts->sum[xb];
            oct->d8[lane] = acts->d[xb];
        }
    acts->regrouped = all;
    return 0;
}

/* ---- Prefill of many tokens: four blocks per step, two int32 lanes per block ----
 * The tiles above spend, per row, token and block (Q8_0) or block pair (Q4_0), a convert, a scale product and an FMA,
 * and Q4_0 a vperm2i128 pair per row and step. Here both operands are first copied into one layout ("quad" = four
 * blocks; AVX-512's oct_tile on 256-bit vectors): vector v (0..3) holds the values 8v .. 8v + 7 of each of the four
 * blocks, block j in qword j, so int32 lanes 2j and 2j + 1 always belong to block j and one convert, one scale
 * multiply and one FMA serve 128 multiply-adds. The weights stay in registers, the activations are read from L1:
 *   Q4_0: weights as nibbles n (0..15); the four vpmaddubsw(n, x) add up in 16 bits (|lane| <= 8 x 15 x 127), one
 *         vpmaddwd widens them, and -8 x (the lane's sum of x), packed with the activations, is the -8 offset.
 *   Q8_0: weights packed as |w| (128 for w = -128, as an unsigned byte) and w; vpmaddubsw(|w|, x with w's sign)
 *         (|pair| <= 2 x 128 x 127: no saturation, but two do not add up in 16 bits; x is never -128, so its
 *         negation is exact) and a vpmaddwd per vector. |w| stays in registers, w's signs are read from L1.
 * Q4_K / Q6_K (a 256-value super-block of sixteen 16-value groups) pack as two such steps of 128 values: vector v holds
 * values 4v .. 4v + 3 of each of the half's eight groups, one group per int32 lane (lanes 0-3 groups 0, 2, 4, 6, lanes
 * 4-7 groups 1, 3, 5, 7: the order a 4 x 4 dword transpose in each 128-bit lane leaves; weights and activations share
 * it and the per-lane scales follow it). A value is S_l q - M_l with q unsigned (Q4_K: S = d x scale, M = dmin x min of
 * the 32-value sub-block; Q6_K: S = d x scale, M = 32 S), so a lane's sum is S_l sum(q x) - M_l sum(x): the second
 * term is one FMA with the token's f32 -d x group sums (Q8_K's bsums). Q4_K's four vpmaddubsw add up in 16 bits as
 * Q4_0's (|lane| <= 8 x 15 x 128); Q6_K's (q <= 63: |pair| <= 2 x 63 x 128) two at a time, then two vpmaddwd.
 * Weights are packed per panel of rows and k chunk (quant_packed_loop.h), activations once per call. Blocks past
 * in_dim (the last quad) are zero with zero scales. */
enum {
    QUAD_BLOCKS = 4,
    QUAD_W_BYTES = 2 * 4 * 32 + 8 * 4,     /* a row's quad: values [4][32] (Q4_0 nibbles, Q8_0 |w|), Q8_0 w [4][32],
                                              f32 scales [8] (lanes 2j, 2j+1: block j) */
    QUAD_X_BYTES = 4 * 32 + 2 * 8 * 4,     /* a token's quad: s8 values [4][32], int32 -8 x lane sums [8] (k-quants:
                                              f32 -d x group sums), f32 scales [8]; a super-block is two */
    QUAD_WK_BYTES = 4 * 32 + 2 * 8 * 4,    /* a row's half super-block: q [4][32], f32 S [8], f32 M [8] */
    QUAD_CHUNK_K = 8,                      /* super-blocks per k chunk (2048 inputs, as QUAD_CHUNK) */
    QUAD_ROWS = 1,                         /* tile: 1 row x 4 tokens: the row's 4 weight vectors and scales stay in
                                              registers (Q8_0 has 4 more temporaries per token); 1 x 6 and 1 x 8
                                              were no faster (Q8_0 0.9x), 2 rows do not fit the 16 ymm */
    QUAD_TOKENS = 4,
    QUAD_CHUNK = 16,                       /* quads per k chunk (2048 inputs): 4 tokens' chunk (12 KB) stays in L1 */
    /* fewer tokens: packing the panels costs more than it saves (one thread, 2048 x 2048, GFLOP/s, the tiles above
     * vs packed: Q8_0 at 2 tokens 75 vs 59, 6 tokens 87 vs 99; Q4_0 108 vs 77, 123 vs 149) */
    QUAD_MIN_TOKENS_Q8_0 = 6,
    QUAD_MIN_TOKENS_Q4_0 = 6 /* k-quants: AYA_QUAD_MIN_TOKENS_K in kquant.h */
};

/* Four blocks' 32 values (b[j]) into the quad layout: out[v] qword j = b[j] qword v. */
AYA_ALWAYS_INLINE void quad_transpose(const __m256i b[4], __m256i out[4]) {
    __m256i t0 = _mm256_unpacklo_epi64(b[0], b[1]), t1 = _mm256_unpackhi_epi64(b[0], b[1]); /* [q0 | q2], [q1 | q3] */
    __m256i t2 = _mm256_unpacklo_epi64(b[2], b[3]), t3 = _mm256_unpackhi_epi64(b[2], b[3]);
    out[0] = _mm256_permute2x128_si256(t0, t2, 0x20);
    out[1] = _mm256_permute2x128_si256(t1, t3, 0x20);
    out[2] = _mm256_permute2x128_si256(t0, t2, 0x31);
    out[3] = _mm256_permute2x128_si256(t1, t3, 0x31);
}

/* Four scales into lanes 2j, 2j + 1. */
AYA_ALWAYS_INLINE __m256 quad_spread(__m128 d) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

/* 128 values in order (in[n]: values 32n .. 32n + 31, groups 2n and 2n + 1) into the k-quant layout: out[v] lane i =
 * dword v of group 2i, lane 4 + i = dword v of group 2i + 1 (a 4 x 4 dword transpose in each 128-bit lane). */
AYA_ALWAYS_INLINE void quad_transpose_groups(const __m256i in[4], __m256i out[4]) {
    __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]), t1 = _mm256_unpackhi_epi32(in[0], in[1]);
    __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]), t3 = _mm256_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* One Q4_K / Q6_K super-block (blk) as two halves into d (QUAD_WK_BYTES each): q in the group layout, S [8], M [8]. */
AYA_ALWAYS_INLINE void quad_pack_super_block(int kind, const uint8_t *blk, uint8_t *d) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03);
    float group_s[16], group_m[16];
    aya_k_group_scales(kind, blk, group_s, group_m);
    for (int h = 0; h < 2; h++, d += QUAD_WK_BYTES) {
        __m256i in[4], v[4];
        float s[8], m[8];
        for (int i = 0; i < 4; i++) { /* lane i: group 8h + 2i, lane 4 + i: group 8h + 2i + 1 */
            s[i] = group_s[8 * h + 2 * i];
            m[i] = group_m[8 * h + 2 * i];
            s[4 + i] = group_s[8 * h + 2 * i + 1];
            m[4 + i] = group_m[8 * h + 2 * i + 1];
        }
        if (kind == AYA_WEIGHT_Q4_K) { /* per 64 values 32 bytes: the first 32 in the low nibbles, the next in the high */
            for (int c = 0; c < 2; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *) (blk + 16 + 64 * h + 32 * c));
                in[2 * c] = _mm256_and_si256(q, low4);
                in[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            }
        } else { /* Q6_K: per 128 values 64 bytes of low 4 bits (values l and l + 64 share a byte), 32 of 2 high bits */
            __m256i a = _mm256_loadu_si256((const __m256i *) (blk + 64 * h));
            __m256i b = _mm256_loadu_si256((const __m256i *) (blk + 64 * h + 32));
            __m256i high = _mm256_loadu_si256((const __m256i *) (blk + 128 + 32 * h));
            for (int k = 0; k < 4; k++) { /* values 32k .. 32k + 31 of the half */
                __m256i low = k == 0 ? a : k == 1 ? b : k == 2 ? _mm256_srli_epi16(a, 4) : _mm256_srli_epi16(b, 4);
                in[k] = _mm256_or_si256(_mm256_and_si256(low, low4),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * k), two), 4));
            }
        }
        quad_transpose_groups(in, v);
        for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *) (d + 32 * i), v[i]);
        _mm256_storeu_ps((float *) (d + 128), _mm256_loadu_ps(s));
        _mm256_storeu_ps((float *) (d + 160), _mm256_loadu_ps(m));
    }
}

/* Packs rows [0, rows) of w (row_bytes apart) x quads [g0, g0 + quads) into dst[row][quad] (QUAD_W_BYTES each);
 * Q4_K / Q6_K: x super-blocks [g0, g0 + quads) (2 x QUAD_WK_BYTES each). */
static void quad_pack_weights(int kind, const uint8_t *w, size_t row_bytes, int32_t rows, int32_t blocks, int32_t g0,
                              int32_t quads, uint8_t *dst) {
    if (kind >= AYA_WEIGHT_Q4_K) {
        const size_t bb = aya_block_bytes(kind);
        for (int32_t r = 0; r < rows; r++)
            for (int32_t g = 0; g < quads; g++) {
                const uint8_t *blk = w + (size_t) r * row_bytes + (size_t) (g0 + g) * bb;
                /* three rows on, as below */
                for (size_t line = 0; line < bb; line += 64) _mm_prefetch((const char *) blk + 3 * row_bytes + line, _MM_HINT_T0);
                quad_pack_super_block(kind, blk, dst + ((size_t) r * quads + g) * 2 * QUAD_WK_BYTES);
            }
        return;
    }
    const int q4 = kind == AYA_WEIGHT_Q4_0;
    const size_t bb = q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES;
    for (int32_t r = 0; r < rows; r++)
        for (int32_t g = 0; g < quads; g++) {
            uint8_t *d = dst + ((size_t) r * quads + g) * QUAD_W_BYTES;
            /* the same quad three rows on (read once, from DRAM; past the panel these are the next panel's rows, and
             * a prefetch past the weights does not fault) */
            const uint8_t *ahead = w + (size_t) (r + 3) * row_bytes + (size_t) (g0 + g) * QUAD_BLOCKS * bb;
            for (size_t line = 0; line < QUAD_BLOCKS * bb; line += 64) _mm_prefetch((const char *) ahead + line, _MM_HINT_T0);
            __m256i b[4];
            __m128i h = _mm_setzero_si128();
            for (int j = 0; j < 4; j++) {
                int32_t block = (g0 + g) * QUAD_BLOCKS + j;
                if (block >= blocks) { b[j] = _mm256_setzero_si256(); continue; }
                const uint8_t *blk = w + (size_t) r * row_bytes + (size_t) block * bb;
                switch (j) { /* constant lanes once the loop is unrolled */
                    case 0: h = _mm_insert_epi16(h, aya_load_u16(blk), 0); break;
                    case 1: h = _mm_insert_epi16(h, aya_load_u16(blk), 1); break;
                    case 2: h = _mm_insert_epi16(h, aya_load_u16(blk), 2); break;
                    default: h = _mm_insert_epi16(h, aya_load_u16(blk), 3); break;
                }
                b[j] = q4 ? load_nibbles(blk + 2) : _mm256_loadu_si256((const __m256i *) (blk + 2));
            }
            __m256i v[4];
            quad_transpose(b, v);
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_si256((__m256i *) (d + 32 * i), q4 ? v[i] : _mm256_abs_epi8(v[i]));
                if (!q4) _mm256_storeu_si256((__m256i *) (d + 128 + 32 * i), v[i]);
            }
            _mm256_storeu_ps((float *) (d + 256), quad_spread(_mm_cvtph_ps(h)));
        }
}

/* Packs every token's quantized activations into dst[token][quad] (QUAD_X_BYTES each). */
static void quad_pack_activations(const aya_q8_acts *acts, int32_t tokens, int32_t blocks, int32_t quads,
                                  uint8_t *dst) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t g = 0; g < quads; g++) {
            uint8_t *d = dst + ((size_t) t * quads + g) * QUAD_X_BYTES;
            __m256i b[4];
            float scale[4];
            for (int j = 0; j < 4; j++) {
                int32_t block = g * QUAD_BLOCKS + j;
                int live = block < blocks;
                b[j] = live ? _mm256_loadu_si256((const __m256i *) (acts->q + ((size_t) t * blocks + block) * AYA_QK))
                            : _mm256_setzero_si256();
                scale[j] = live ? acts->d[(size_t) t * blocks + block] : 0.0f;
            }
            __m256i v[4], sums = _mm256_setzero_si256();
            quad_transpose(b, v);
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_si256((__m256i *) (d + 32 * i), v[i]);
                sums = _mm256_add_epi32(sums, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v[i]), ones16));
            }
            _mm256_storeu_si256((__m256i *) (d + 128), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 3)));
            _mm256_storeu_ps((float *) (d + 160), quad_spread(_mm_loadu_ps(scale)));
        }
}

/* Packs every token's Q8_K activations into dst[token][super-block] (two QUAD_X_BYTES halves each). */
static void quad_pack_activations_k(const aya_q8k_acts *acts, int32_t tokens, int32_t supers, uint8_t *dst) {
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7); /* the groups of the lanes */
    for (int32_t t = 0; t < tokens; t++)
        for (int32_t g = 0; g < supers; g++) {
            size_t xb = (size_t) t * supers + g;
            for (int h = 0; h < 2; h++) {
                uint8_t *d = dst + (2 * xb + h) * QUAD_X_BYTES;
                __m256i in[4], v[4];
                for (int n = 0; n < 4; n++)
                    in[n] = _mm256_loadu_si256((const __m256i *) (acts->q + xb * AYA_QK_K + 128 * h + 32 * n));
                quad_transpose_groups(in, v);
                for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *) (d + 32 * i), v[i]);
                __m256i sums = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *) (acts->bsum + xb * 16 + 8 * h)));
                __m256 fsums = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(sums, order));
                _mm256_storeu_ps((float *) (d + 128), _mm256_mul_ps(fsums, _mm256_set1_ps(-acts->d[xb])));
                _mm256_storeu_ps((float *) (d + 160), _mm256_set1_ps(acts->d[xb]));
            }
        }
}

/* out[t * out_stride + r] (= or +=, per accumulate) the products of RM packed rows (w_stride apart) and RN packed
 * tokens (x_stride apart) over quads [0, quads) (k-quants: super-blocks, two steps each). kind, RM, RN are
 * compile-time constants at every call site. */
AYA_ALWAYS_INLINE void quad_tile(const int kind, const int RM, const int RN, const uint8_t *w, size_t w_stride,
                                 const uint8_t *x, size_t x_stride, int32_t quads, float *out, int32_t out_stride,
                                 int accumulate) {
    const int k = kind >= AYA_WEIGHT_Q4_K, nibbles = kind == AYA_WEIGHT_Q4_0 || kind == AYA_WEIGHT_Q4_K;
    const size_t w_bytes = k ? QUAD_WK_BYTES : QUAD_W_BYTES;
    const int32_t steps = k ? 2 * quads : quads;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[QUAD_TOKENS][QUAD_ROWS];
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) acc[t][r] = _mm256_setzero_ps();
    for (int32_t g = 0; g < steps; g++) {
        __m256i wv[QUAD_ROWS][4];
        __m256 dw[QUAD_ROWS], mw[QUAD_ROWS];
        for (int r = 0; r < RM; r++) {
            const uint8_t *wr = w + r * w_stride + (size_t) g * w_bytes;
            for (int i = 0; i < 4; i++) wv[r][i] = _mm256_loadu_si256((const __m256i *) (wr + 32 * i));
            dw[r] = _mm256_loadu_ps((const float *) (wr + (k ? 128 : 256)));
            if (k) mw[r] = _mm256_loadu_ps((const float *) (wr + 160));
        }
        for (int t = 0; t < RN; t++) {
            const uint8_t *xt = x + t * x_stride + (size_t) g * QUAD_X_BYTES;
            __m256 dx = _mm256_loadu_ps((const float *) (xt + 160));
            for (int r = 0; r < RM; r++) {
                __m256i p;
                if (nibbles || kind == AYA_WEIGHT_Q6_K) {
                    __m256i s01 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(wv[r][0], _mm256_loadu_si256((const __m256i *) xt)),
                            _mm256_maddubs_epi16(wv[r][1], _mm256_loadu_si256((const __m256i *) (xt + 32))));
                    __m256i s23 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(wv[r][2], _mm256_loadu_si256((const __m256i *) (xt + 64))),
                            _mm256_maddubs_epi16(wv[r][3], _mm256_loadu_si256((const __m256i *) (xt + 96))));
                    p = nibbles ? _mm256_madd_epi16(_mm256_add_epi16(s01, s23), ones) /* 4 x 2 x 15 x 128 fit */
                                : _mm256_add_epi32(_mm256_madd_epi16(s01, ones), _mm256_madd_epi16(s23, ones));
                    if (!k) p = _mm256_add_epi32(p, _mm256_loadu_si256((const __m256i *) (xt + 128))); /* Q4_0's -8 */
                } else {
                    const uint8_t *wr = w + r * w_stride + (size_t) g * QUAD_W_BYTES;
                    __m256i q[4];
                    for (int i = 0; i < 4; i++) {
                        __m256i signed_x = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *) (xt + 32 * i)),
                                                            _mm256_loadu_si256((const __m256i *) (wr + 128 + 32 * i)));
                        q[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[r][i], signed_x), ones);
                    }
                    p = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
                }
                acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[t][r]);
                if (k) /* - M x the token's scaled group sums */
                    acc[t][r] = _mm256_fmadd_ps(mw[r], _mm256_loadu_ps((const float *) (xt + 128)), acc[t][r]);
            }
        }
    }
    for (int t = 0; t < RN; t++)
        for (int r = 0; r < RM; r++) {
            float s = hsum(acc[t][r]), *o = out + (size_t) t * out_stride + r;
            *o = accumulate ? *o + s : s;
        }
}

/* the packed prefill driver (quant_packed_loop.h) around quad_tile */
#define AYA_P_BLOCKS QUAD_BLOCKS
#define AYA_P_W_BYTES QUAD_W_BYTES
#define AYA_P_X_BYTES QUAD_X_BYTES
#define AYA_P_ROWS QUAD_ROWS
#define AYA_P_TOKENS QUAD_TOKENS
#define AYA_P_CHUNK QUAD_CHUNK
#define AYA_P_WK_BYTES (2 * QUAD_WK_BYTES)
#define AYA_P_XK_BYTES (2 * QUAD_X_BYTES)
#define AYA_P_CHUNK_K QUAD_CHUNK_K
#define aya_p_pack_weights quad_pack_weights
#define aya_p_pack_activations quad_pack_activations
#define aya_p_pack_activations_k quad_pack_activations_k
#define aya_p_tile(kind, ...)                                                                                          \
    ((kind) == AYA_WEIGHT_Q4_0 ? quad_tile(AYA_WEIGHT_Q4_0, __VA_ARGS__)                                               \
     : (kind) == AYA_WEIGHT_Q4_K ? quad_tile(AYA_WEIGHT_Q4_K, __VA_ARGS__)                                             \
     : (kind) == AYA_WEIGHT_Q6_K ? quad_tile(AYA_WEIGHT_Q6_K, __VA_ARGS__) : quad_tile(AYA_WEIGHT_Q8_0, __VA_ARGS__))
#include "quant_packed_loop.h"

void aya_matmul_q8_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens >= QUAD_MIN_TOKENS_Q8_0) aya_p_matmul(AYA_WEIGHT_Q8_0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    else aya_q_matmul(0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (tokens >= QUAD_MIN_TOKENS_Q4_0) aya_p_matmul(AYA_WEIGHT_Q4_0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    else aya_q_matmul(1, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

/* Q4_K / Q6_K from AYA_QUAD_MIN_TOKENS_K tokens on (kquant_avx2.c picks them). */
void aya_matmul_q4_k_avx2quad(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                              int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_p_matmul(AYA_WEIGHT_Q4_K, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q6_k_avx2quad(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                              int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_p_matmul(AYA_WEIGHT_Q6_K, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
