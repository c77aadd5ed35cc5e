/* The x86 Q5_0 / Q4_K / Q6_K kernels, written once on 256-bit vectors and compiled twice: kquant_avx2.c (AVX2:
 * vpmaddubsw + vpmaddwd) and kquant_avx512.c (AVX512-VNNI: vpdpbusd, which sums four u8 x s8 products into each int32
 * lane in one instruction). The including file defines KQ_VNNI (0 or 1) and KQ_FN(name) (the exported name).
 *
 * Every weight value is made unsigned (Q5_0: 0..31, Q4_K: 0..15, Q6_K: 0..63) so one u8 x s8 instruction multiplies it
 * with the int8 activations; the offsets (16, 32) come back through the activations' block sums, as in llama.cpp.
 * All of a block's products and scale multiplies are exact int32; each block adds int * (d_w * d_x) to f32 lanes, so
 * results equal the scalar kernels' up to the order of the f32 sums.
 *
 * Decode (1 token) reads KQ_DECODE_ROWS rows per pass a 1/KQ_DECODE_ROWS of the slice apart (as quant_loop.h:
 * forward streams far apart that the hardware prefetchers follow, sharing the token's loads), each stream prefetched
 * KQ_DECODE_AHEAD bytes on; prefill unpacks each weight block once for up to 4 tokens, over panels of rows that stay
 * in L2. A row's sum is the same whatever the rows per pass. */
#include "kquant.h"

#ifdef AYA_EMULATE_AVX512
#define KQ_INLINE static inline /* the emulated intrinsics are big: forced inlining takes minutes to compile */
#else
#define KQ_INLINE static inline __attribute__((always_inline))
#endif

/* KQ_DECODE_ROWS: decode rows per pass, a 1/KQ_DECODE_ROWS of the slice apart (at most KQ_TOKENS); against one row
 * after another, one thread: AVX512-VNNI in cache Q4_K 18-28 -> 30-31 GB/s, Q6_K 32-41 -> 42-45; AVX2 from memory with
 * 1 KiB prefetch Q4_K 1.01-1.17x, Q6_K 1.02-1.31x (performance-native.md sections 8, 22). */
enum { KQ_PANEL_ROWS = 32, KQ_TOKENS = 4, KQ_DECODE_ROWS = 4 };
/* The including file may define KQ_DECODE_AHEAD (bytes ahead that a decode pass prefetches in each of its row streams;
 * 0: none). */
#ifndef KQ_DECODE_AHEAD
#define KQ_DECODE_AHEAD 0
#endif

/* A block's f16 scale as f32: one F16C instruction (exact, as aya_f16_to_f32; the portable version's branches and
 * shifts were ~10% of the Q6_K decode). SIMDe's emulation keeps the portable one. */
KQ_INLINE float kq_f16(uint16_t h) {
#ifdef AYA_EMULATE_AVX512
    return aya_f16_to_f32(h);
#else
    return _cvtsh_ss(h);
#endif
}

#if KQ_VNNI
/* acc + sum of four u8 x s8 products per int32 lane */
#define KQ_DOT_ACC(acc, u, x) _mm256_dpbusd_epi32((acc), (u), (x))
/* (the scaled dots of Q4_K and Q6_K have their own 512-bit VNNI code) */
#else
#define KQ_DOT_ACC(acc, u, x) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (x)), _mm256_set1_epi16(1)))
/* vpmaddubsw sums pairs into int16 (|sum| <= 2 * 63 * 127: no saturation), vpmaddwd multiplies by the int16 scales */
#define KQ_SCALED_DOT(u, x, scale16) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (x)), (scale16))
#endif

KQ_INLINE float kq_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KQ_INLINE void kq_prefetch(const uint8_t *p, size_t bytes) {
    for (size_t at = 0; at < bytes; at += 64) _mm_prefetch((const char *) p + at, _MM_HINT_T0);
}

/* ---- Q5_0 (32 values: f16 d, 4 bytes of 5th bits, 16 bytes of nibbles) x Q8_0 activations ---- */

/* The 32 values nibble | 5th bit << 4 (0..31) as unsigned bytes. */
KQ_INLINE __m256i kq_unpack_q5_0(const uint8_t *blk) {
    __m128i nib = _mm_loadu_si128((const __m128i *) (blk + 6));
    __m256i low = _mm256_and_si256(_mm256_setr_m128i(nib, _mm_srli_epi16(nib, 4)), _mm256_set1_epi8(0x0F));
    uint32_t high;
    memcpy(&high, blk + 2, 4);
    /* byte j of the vector gets byte j / 8 of `high`, then tests its bit j % 8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int32_t) high), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_or_si256(low, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

/* out[t * out_stride + r * out_step] = row r . token (first + t) for RM rows (row r at row + r * apart) and RN tokens;
 * RM x RN <= 4 (decode: up to 4 rows, prefill: up to 4 tokens). Each row's sum is the same whatever RM and RN. */
KQ_INLINE void kq_q5_0_rows(const int RM, const int RN, const uint8_t *row, size_t apart, const aya_q8_acts *acts,
                            int32_t first, int32_t in_dim, float *out, int32_t out_stride, size_t out_step,
                            const size_t ahead) {
    const int32_t blocks = in_dim / AYA_QK;
    __m256 acc[KQ_TOKENS][KQ_TOKENS];
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) acc[r][t] = _mm256_setzero_ps();
    for (int32_t b = 0; b < blocks; b++) {
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = row + (size_t) r * apart + (size_t) b * AYA_Q5_0_BYTES;
            if (ahead) _mm_prefetch((const char *) blk + ahead, _MM_HINT_T0);
            __m256i u = kq_unpack_q5_0(blk);
            float dw = kq_f16(aya_load_u16(blk));
            for (int t = 0; t < RN; t++) {
                size_t xb = (size_t) (first + t) * blocks + b;
                __m256i x = _mm256_loadu_si256((const __m256i *) (acts->q + xb * AYA_QK));
                /* sum((u - 16) * x): the -16 * sum(x) enters lane 0 */
                __m256i dot = KQ_DOT_ACC(_mm256_zextsi128_si256(_mm_cvtsi32_si128(-16 * acts->sum[xb])), u, x);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * acts->d[xb]), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) out[(size_t) t * out_stride + (size_t) r * out_step] = kq_hsum(acc[r][t]);
}

/* ---- Q4_K (256 values: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles) x Q8_K activations ---- */

/* The 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K super-block's 12 packed bytes (ggml's utmp shuffle:
 * the same values as aya_q4_k_scale_min, four at a time), in vector registers: packed is read as 16 bytes (the 4 past
 * the scales are the block's first nibbles, unused). Written with scalar stores and reloaded as one vector, the
 * shuffle stalled on store forwarding in every block. With u0, u1, u2 the three words:
 *   scales 0-3 = u0 & 0x3f.., mins 0-3 = u1 & 0x3f.., scales 4-7 = (u2 & 0x0f..) | ((u0 >> 6) & 3..) << 4,
 *   mins 4-7 = ((u2 >> 4) & 0x0f..) | ((u1 >> 6) & 3..) << 4. */
KQ_INLINE __m128i kq_q4_k_scales_mins(const uint8_t *packed) {
    __m128i u = _mm_loadu_si128((const __m128i *) packed);
    __m128i low6 = _mm_and_si128(u, _mm_set1_epi8(0x3f));                          /* [scales 0-3, mins 0-3, ..] */
    __m128i u2 = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 2, 2, 2));
    __m128i low4 = _mm_and_si128(_mm_srlv_epi32(u2, _mm_setr_epi32(0, 4, 0, 4)), _mm_set1_epi8(0x0f));
    __m128i top2 = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(u, 6), _mm_set1_epi8(0x03)), 4); /* of u0, u1 */
    __m128i high = _mm_or_si128(low4, top2);                                         /* [scales 4-7, mins 4-7, ..] */
    return _mm_unpacklo_epi32(low6, high);
}

#if KQ_VNNI
/* kq_q4_k_scales_mins of RM (<= 4) rows `apart` bytes apart at once, row r's 16 bytes in 128-bit lane r (the lanes past
 * RM: row 0's): one unpacking on 512-bit vectors for the four rows of a decode pass instead of four on 128-bit ones. */
KQ_INLINE __m512i kq_q4_k_scales_mins_rows(const int RM, const uint8_t *packed, size_t apart) {
    __m512i u = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) packed));
    for (int r = 1; r < RM; r++)
        u = _mm512_mask_broadcast_i32x4(u, 0xF << 4 * r, _mm_loadu_si128((const __m128i *) (packed + r * apart)));
    __m512i low6 = _mm512_and_si512(u, _mm512_set1_epi8(0x3f));
    __m512i u2 = _mm512_shuffle_epi8(u, _mm512_set1_epi32(0x0b0a0908)); /* word 2 of each lane */
    __m512i low4 = _mm512_and_si512(_mm512_srlv_epi32(u2, _mm512_set4_epi32(4, 0, 4, 0)), _mm512_set1_epi8(0x0f));
    __m512i top2 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 6), _mm512_set1_epi8(0x03)), 4);
    return _mm512_unpacklo_epi32(low6, _mm512_or_si512(low4, top2));
}

/* Row r's lane of kq_q4_k_scales_mins_rows in every 128-bit lane. */
KQ_INLINE __m512i kq_q4_k_row_scales_mins(__m512i rows, int r) {
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(2 * r, 2 * r + 1, 2 * r, 2 * r + 1, 2 * r, 2 * r + 1, 2 * r, 2 * r + 1), rows);
}
typedef __m512i kq_scales_mins; /* a row's 16 bytes of kq_q4_k_scales_mins in each 128-bit lane */
#else
typedef __m128i kq_scales_mins;
#endif

/* The scaled dots of one block's 256 values with RN tokens' values, as int32 lanes (kq_dots: 16 under VNNI, else 8;
 * the order of integer sums does not matter): sum over sub-blocks j of scale_j x (nibbles . the token's values of j).
 * scales_mins: the 8 scales (bytes 0..7) and mins (8..15) of kq_q4_k_scales_mins (VNNI: in each 128-bit lane). */
#if KQ_VNNI
/* AVX512-VNNI: 128 values per step on 512-bit vectors (as Q6_K's): the low nibbles of 64 bytes are sub-blocks 4h
 * (lanes 0-7) and 4h + 2 (lanes 8-15), the high ones 4h + 1 and 4h + 3; a token's values come as the matching two
 * 32-byte halves. vpmaddubsw sums pairs of nibble x value into int16 (|sum| <= 2 * 15 * 127), vpdpwssd multiplies
 * them by the int16 scale of their sub-block and adds pairs into the int32 lanes: two instructions per 64 values
 * where vpdpbusd + vpmulld + vpaddd took four uops. The 16 lanes go unfolded into 16 f32 sums (kq_acc): folding
 * them into eight per block took two more uops per row and block. */
KQ_INLINE void kq_q4_k_block_dots(const int RN, const uint8_t *blk, __m512i sm4, const int8_t *xq,
                                  size_t x_stride, __m512i *wide) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int t = 0; t < RN; t++) wide[t] = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) { /* sub-blocks 4h .. 4h + 3 */
        __m512i q = _mm512_loadu_si512((const void *) (blk + 16 + 64 * h));
        __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        /* words 0-15: sub-block 4h's scale, words 16-31: 4h + 2's (the high nibbles: + 1), as int16 by an in-lane
         * byte shuffle (index 0x80: a zero high byte), cheaper than a word permute of the scales widened first */
        __m512i s_lo = _mm512_shuffle_epi8(sm4, _mm512_inserti64x4(_mm512_set1_epi16((int16_t) (0x8000 | (4 * h))),
                                                                   _mm256_set1_epi16((int16_t) (0x8000 | (4 * h + 2))), 1));
        __m512i s_hi = _mm512_shuffle_epi8(sm4, _mm512_inserti64x4(_mm512_set1_epi16((int16_t) (0x8000 | (4 * h + 1))),
                                                                   _mm256_set1_epi16((int16_t) (0x8000 | (4 * h + 3))), 1));
        for (int t = 0; t < RN; t++) {
            const int8_t *x = xq + t * x_stride + 128 * h; /* sub-block j's values at 32j */
            __m512i x_lo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) x)),
                                              _mm256_loadu_si256((const __m256i *) (x + 64)), 1);
            __m512i x_hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) (x + 32))),
                                              _mm256_loadu_si256((const __m256i *) (x + 96)), 1);
            wide[t] = _mm512_dpwssd_epi32(wide[t], _mm512_maddubs_epi16(lo, x_lo), s_lo);
            wide[t] = _mm512_dpwssd_epi32(wide[t], _mm512_maddubs_epi16(hi, x_hi), s_hi);
        }
    }
}
#else
KQ_INLINE void kq_q4_k_block_dots(const int RN, const uint8_t *blk, __m128i scales_mins, const int8_t *xq,
                                  size_t x_stride, __m256i *dots) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    /* the 8 scales as int16, in both 128-bit halves; sub-block j's scale is its int16 lane j */
    const __m256i scales16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins));
    for (int t = 0; t < RN; t++) dots[t] = _mm256_setzero_si256();
    for (int g = 0; g < 4; g++) { /* 32 bytes: sub-block 2g in the low nibbles, 2g + 1 in the high ones */
        __m256i q = _mm256_loadu_si256((const __m256i *) (blk + 16 + 32 * g));
        __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        /* int16 lanes of the scale */
        __m256i s_lo = _mm256_shuffle_epi8(scales16, _mm256_set1_epi16((int16_t) ((4 * g + 1) << 8 | 4 * g)));
        __m256i s_hi = _mm256_shuffle_epi8(scales16, _mm256_set1_epi16((int16_t) ((4 * g + 3) << 8 | (4 * g + 2))));
        for (int t = 0; t < RN; t++) {
            const int8_t *x = xq + t * x_stride + 64 * g;
            dots[t] = _mm256_add_epi32(dots[t], KQ_SCALED_DOT(lo, _mm256_loadu_si256((const __m256i *) x), s_lo));
            dots[t] = _mm256_add_epi32(dots[t], KQ_SCALED_DOT(hi, _mm256_loadu_si256((const __m256i *) (x + 32)), s_hi));
        }
    }
}
#endif

/* The f32 sums of the row kernels: under VNNI 16 lanes (a block's 512-bit integer dots go in unfolded), else 8.
 * kq_acc_fmadd adds dots x scale (lane 0 of scale), kq_acc_fnmadd8 takes v x scale off (8 lanes). */
#if KQ_VNNI
typedef __m512 kq_acc;
typedef __m512i kq_dots;
#define KQ_ACC_ZERO() _mm512_setzero_ps()
KQ_INLINE __m512 kq_acc_fmadd(__m512i dots, __m128 scale, __m512 acc) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_broadcastss_ps(scale), acc);
}
KQ_INLINE __m512 kq_acc_fnmadd8(__m256i v, __m128 scale, __m512 acc) {
    return _mm512_mask3_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_castsi256_si512(v)), _mm512_broadcastss_ps(scale), acc, 0xFF);
}
KQ_INLINE __m512i kq_dots_sub8(__m512i dots, __m256i v) { /* dots - v in lanes 0-7 */
    return _mm512_mask_sub_epi32(dots, 0xFF, dots, _mm512_castsi256_si512(v));
}
KQ_INLINE float kq_acc_sum(__m512 acc) {
    return kq_hsum(_mm256_add_ps(_mm512_castps512_ps256(acc),
                                 _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(acc), 1))));
}
#else
typedef __m256 kq_acc;
typedef __m256i kq_dots;
#define KQ_ACC_ZERO() _mm256_setzero_ps()
KQ_INLINE __m256 kq_acc_fmadd(__m256i dots, __m128 scale, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_broadcastss_ps(scale), acc);
}
KQ_INLINE __m256 kq_acc_fnmadd8(__m256i v, __m128 scale, __m256 acc) {
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(v), _mm256_broadcastss_ps(scale), acc);
}
KQ_INLINE __m256i kq_dots_sub8(__m256i dots, __m256i v) { return _mm256_sub_epi32(dots, v); }
KQ_INLINE float kq_acc_sum(__m256 acc) { return kq_hsum(acc); }
#endif

/* The 8 mins of kq_q4_k_scales_mins as int16, each twice: [m0 m0 m1 m1 .. m7 m7]. */
KQ_INLINE __m256i kq_q4_k_mins16(kq_scales_mins scales_mins) {
#if KQ_VNNI /* one in-lane byte shuffle */
    const __m256i index = _mm256_setr_epi16((int16_t) 0x8008, (int16_t) 0x8008, (int16_t) 0x8009, (int16_t) 0x8009,
                                            (int16_t) 0x800a, (int16_t) 0x800a, (int16_t) 0x800b, (int16_t) 0x800b,
                                            (int16_t) 0x800c, (int16_t) 0x800c, (int16_t) 0x800d, (int16_t) 0x800d,
                                            (int16_t) 0x800e, (int16_t) 0x800e, (int16_t) 0x800f, (int16_t) 0x800f);
    return _mm256_shuffle_epi8(_mm512_castsi512_si256(scales_mins), index);
#else
    return _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(scales_mins, scales_mins));
#endif
}

/* A Q4_K block's f16 d and dmin (the block's first 4 bytes) as floats in lanes 0 and 1: one convert for both. */
KQ_INLINE __m128 kq_q4_k_d_dmin(const uint8_t *blk) {
#ifdef AYA_EMULATE_AVX512
    return _mm_setr_ps(aya_f16_to_f32(aya_load_u16(blk)), aya_f16_to_f32(aya_load_u16(blk + 2)), 0.0f, 0.0f);
#else
    uint32_t both;
    memcpy(&both, blk, 4);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int32_t) both));
#endif
}

/* As kq_q5_0_rows. */
KQ_INLINE void kq_q4_k_rows(const int RM, const int RN, const uint8_t *row, size_t apart, const aya_q8k_acts *acts,
                            int32_t first, int32_t in_dim, float *out, int32_t out_stride, size_t out_step,
                            const size_t ahead) {
    const int32_t blocks = in_dim / AYA_QK_K;
    kq_acc acc[KQ_TOKENS][KQ_TOKENS];
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) acc[r][t] = KQ_ACC_ZERO();
    for (int32_t b = 0; b < blocks; b++) {
#if KQ_VNNI
        __m512i rows_scales_mins = kq_q4_k_scales_mins_rows(RM, row + (size_t) b * AYA_Q4_K_BYTES + 4, apart);
#endif
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = row + (size_t) r * apart + (size_t) b * AYA_Q4_K_BYTES;
            if (ahead) kq_prefetch(blk + ahead, AYA_Q4_K_BYTES);
#if KQ_VNNI
            kq_scales_mins scales_mins = kq_q4_k_row_scales_mins(rows_scales_mins, r);
#else
            kq_scales_mins scales_mins = kq_q4_k_scales_mins(blk + 4);
#endif
            /* the mins as int16, each twice: [m0 m0 m1 m1 .. m7 m7], against the 16 sums of 16 values */
            __m256i mins16 = kq_q4_k_mins16(scales_mins);
            kq_dots dots[KQ_TOKENS];
            kq_q4_k_block_dots(RN, blk, scales_mins, acts->q + ((size_t) first * blocks + b) * AYA_QK_K,
                               (size_t) blocks * AYA_QK_K, dots);
            __m128 d_dmin = kq_q4_k_d_dmin(blk);
            for (int t = 0; t < RN; t++) {
                size_t xb = (size_t) (first + t) * blocks + b;
                /* d * dx and dmin * dx in one multiply */
                __m128 scale = _mm_mul_ps(d_dmin, _mm_set1_ps(acts->d[xb]));
                /* sum_j min_j * (the token's q summed over sub-block j), in 8 lanes */
                __m256i mins = _mm256_madd_epi16(mins16, _mm256_loadu_si256((const __m256i *) (acts->bsum + xb * 16)));
                acc[r][t] = kq_acc_fmadd(dots[t], scale, acc[r][t]);
                acc[r][t] = kq_acc_fnmadd8(mins, _mm_movehdup_ps(scale), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) out[(size_t) t * out_stride + (size_t) r * out_step] = kq_acc_sum(acc[r][t]);
}

/* ---- Q6_K (256 values: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d) x Q8_K activations ---- */

/* The scaled dots of one block's 256 values with RN tokens' values, as int32 lanes (kq_dots; lane i of eight: values
 * 32k + 4i .. + 3 over k; the order of integer sums does not matter), the values' + 32 offset not yet taken off. */
#if KQ_VNNI
/* AVX512-VNNI: 64 values per step on 512-bit vectors (a 256-bit vpdpbusd + vpmulld pair per 32 values was the limit:
 * ~20 GB/s from memory against Q4_0's ~35). Lanes 0-7 hold values 32k + 4i.., lanes 8-15 values 32(k + 1) + 4i..;
 * vpmaddubsw sums pairs of value x activation into int16 (|sum| <= 2 * 63 * 127), vpdpwssd multiplies them by their
 * group's int16 scale and adds pairs into the int32 lanes (two instructions per 64 values where vpdpbusd + vpmulld +
 * vpaddd took four uops); the two halves stay apart (16 lanes, summed with the eight of the 256-bit kernel's lane i
 * in lanes i and i + 8). */
KQ_INLINE void kq_q6_k_block_dots(const int RN, const uint8_t *blk, const int8_t *xq, size_t x_stride, __m512i *wide) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x03);
    /* words 0-15: the 16 scales as int16 */
    const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (blk + 192))));
    for (int t = 0; t < RN; t++) wide[t] = _mm512_setzero_si512();
    for (int half = 0; half < 2; half++) {
        __m512i ql = _mm512_loadu_si512((const void *) (blk + 64 * half)); /* low 4 bits of k = 0 | k = 1 */
        __m256i qh = _mm256_loadu_si256((const __m256i *) (blk + 128 + 32 * half));
        __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1); /* k's 2 bits at 2k */
        for (int j = 0; j < 2; j++) { /* k = 2j (lanes 0-7) and 2j + 1 (lanes 8-15): scales 8 * half + 4j .. + 3 */
            __m512i low = j == 0 ? ql : _mm512_srli_epi16(ql, 4);
            __m512i high = j == 0 ? qh2 : _mm512_srli_epi16(qh2, 4);
            __m512i u = _mm512_or_si512(_mm512_and_si512(low, low4), _mm512_slli_epi16(_mm512_and_si512(high, two), 4));
            int g = 8 * half + 4 * j;
            /* 16 values per scale: 8 words each */
            const __m512i index = _mm512_setr_epi64(0x0000000000000000ll, 0x0000000000000000ll,
                                                    0x0001000100010001ll, 0x0001000100010001ll,
                                                    0x0002000200020002ll, 0x0002000200020002ll,
                                                    0x0003000300030003ll, 0x0003000300030003ll);
            __m512i scale = _mm512_permutexvar_epi16(_mm512_add_epi16(index, _mm512_set1_epi16((int16_t) g)), scales);
            for (int t = 0; t < RN; t++) {
                __m512i x = _mm512_loadu_si512((const void *) (xq + t * x_stride + 16 * g));
                wide[t] = _mm512_dpwssd_epi32(wide[t], _mm512_maddubs_epi16(u, x), scale);
            }
        }
    }
}
#else
KQ_INLINE void kq_q6_k_block_dots(const int RN, const uint8_t *blk, const int8_t *xq, size_t x_stride, __m256i *dots) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    /* the 16 scales as int16: scales 0-7 in both 128-bit halves, and 8-15 */
    __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (blk + 192)));
    __m256i halves[2] = {_mm256_permute2x128_si256(scales16, scales16, 0x00),
                         _mm256_permute2x128_si256(scales16, scales16, 0x11)};
    for (int t = 0; t < RN; t++) dots[t] = _mm256_setzero_si256();
    for (int half = 0; half < 2; half++) {
        __m256i ql0 = _mm256_loadu_si256((const __m256i *) (blk + 64 * half));
        __m256i ql1 = _mm256_loadu_si256((const __m256i *) (blk + 64 * half + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *) (blk + 128 + 32 * half));
        for (int k = 0; k < 4; k++) { /* values 128 * half + 32k + l, l < 32: scales 8 * half + 2k, + 1 */
            __m256i low = k == 0 ? ql0 : k == 1 ? ql1 : k == 2 ? _mm256_srli_epi16(ql0, 4) : _mm256_srli_epi16(ql1, 4);
            /* k's two high bits (at 2k in qh's bytes) to bits 4-5: masked where they are, then one shift (none
             * for k = 2), so nothing crosses a byte */
            __m256i high = _mm256_and_si256(qh, _mm256_set1_epi8((char) (0x03 << (2 * k))));
            high = k == 0 ? _mm256_slli_epi16(high, 4) : k == 1 ? _mm256_slli_epi16(high, 2)
                 : k == 2 ? high : _mm256_srli_epi16(high, 2);
            __m256i u = _mm256_or_si256(_mm256_and_si256(low, low4), high);
            /* scale 2k in the low 128 bits, 2k + 1 in the high ones (of this half's eight) */
            __m256i scale = _mm256_shuffle_epi8(halves[half],
                                                _mm256_setr_epi8(4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
                                                                 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
                                                                 4 * k, 4 * k + 1, 4 * k, 4 * k + 1,
                                                                 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
                                                                 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                                                                 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
                                                                 4 * k + 3));
            int g = 8 * half + 2 * k;
            for (int t = 0; t < RN; t++) {
                __m256i x = _mm256_loadu_si256((const __m256i *) (xq + t * x_stride + 16 * g));
                dots[t] = _mm256_add_epi32(dots[t], KQ_SCALED_DOT(u, x, scale));
            }
        }
    }
}
#endif

/* As kq_q5_0_rows. */
KQ_INLINE void kq_q6_k_rows(const int RM, const int RN, const uint8_t *row, size_t apart, const aya_q8k_acts *acts,
                            int32_t first, int32_t in_dim, float *out, int32_t out_stride, size_t out_step,
                            const size_t ahead) {
    const int32_t blocks = in_dim / AYA_QK_K;
    kq_acc acc[KQ_TOKENS][KQ_TOKENS];
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) acc[r][t] = KQ_ACC_ZERO();
    for (int32_t b = 0; b < blocks; b++) {
        for (int r = 0; r < RM; r++) {
            const uint8_t *blk = row + (size_t) r * apart + (size_t) b * AYA_Q6_K_BYTES;
            if (ahead) kq_prefetch(blk + ahead, AYA_Q6_K_BYTES);
            kq_dots dots[KQ_TOKENS];
            kq_q6_k_block_dots(RN, blk, acts->q + ((size_t) first * blocks + b) * AYA_QK_K, (size_t) blocks * AYA_QK_K,
                               dots);
            __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (blk + 192)));
            float d = kq_f16(aya_load_u16(blk + 208));
            for (int t = 0; t < RN; t++) {
                /* the values are stored + 32: take 32 * sum(scale_g * sum of the token's q over group g) back off */
                size_t xb = (size_t) (first + t) * blocks + b;
                __m256i offset = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *) (acts->bsum + xb * 16)), scales16);
                acc[r][t] = kq_acc_fmadd(kq_dots_sub8(dots[t], _mm256_slli_epi32(offset, 5)), _mm_set1_ps(d * acts->d[xb]),
                                         acc[r][t]);
            }
        }
    }
    for (int r = 0; r < RM; r++)
        for (int t = 0; t < RN; t++) out[(size_t) t * out_stride + (size_t) r * out_step] = kq_acc_sum(acc[r][t]);
}

/* ---- drivers: decode streams rows; prefill walks panels of rows x groups of up to 4 tokens ---- */

#define KQ_MATMUL(rows_fn, acts, block_bytes, block_values)                                                            \
    size_t row_bytes = (size_t) (in_dim / (block_values)) * (block_bytes);                                              \
    const uint8_t *base = (const uint8_t *) w;                                                                          \
    if (tokens == 1) { /* KQ_DECODE_ROWS rows a 1/KQ_DECODE_ROWS of the slice apart, then the last few one by one */   \
        int32_t part = (row_end - row_start) / KQ_DECODE_ROWS;                                                          \
        for (int32_t i = 0; i < part; i++)                                                                              \
            rows_fn(KQ_DECODE_ROWS, 1, base + (size_t) (row_start + i) * row_bytes, (size_t) part * row_bytes, &acts,  \
                    0, in_dim, out + row_start + i, out_stride, (size_t) part, KQ_DECODE_AHEAD);                        \
        for (int32_t r = row_start + part * KQ_DECODE_ROWS; r < row_end; r++)                                           \
            rows_fn(1, 1, base + (size_t) r * row_bytes, row_bytes, &acts, 0, in_dim, out + r, out_stride, 1, 0);      \
        return;                                                                                                         \
    }                                                                                                                   \
    for (int32_t p0 = row_start; p0 < row_end; p0 += KQ_PANEL_ROWS) {                                                   \
        int32_t p1 = p0 + KQ_PANEL_ROWS < row_end ? p0 + KQ_PANEL_ROWS : row_end;                                      \
        for (int32_t t = 0; t < tokens; t += KQ_TOKENS) {                                                               \
            int rn = tokens - t < KQ_TOKENS ? tokens - t : KQ_TOKENS;                                                   \
            float *ot = out + (size_t) t * out_stride;                                                                  \
            for (int32_t r = p0; r < p1; r++) {                                                                         \
                const uint8_t *rw = base + (size_t) r * row_bytes;                                                      \
                switch (rn) { /* constant token counts: the accumulators stay in registers */                          \
                case 1: rows_fn(1, 1, rw, row_bytes, &acts, t, in_dim, ot + r, out_stride, 1, 0); break;               \
                case 2: rows_fn(1, 2, rw, row_bytes, &acts, t, in_dim, ot + r, out_stride, 1, 0); break;               \
                case 3: rows_fn(1, 3, rw, row_bytes, &acts, t, in_dim, ot + r, out_stride, 1, 0); break;               \
                default: rows_fn(1, 4, rw, row_bytes, &acts, t, in_dim, ot + r, out_stride, 1, 0); break;              \
                }                                                                                                       \
            }                                                                                                           \
        }                                                                                                               \
    }

void KQ_FN(aya_matmul_q5_0)(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8_acts acts;
    if (aya_quantize_activations_avx2(x, tokens, in_dim, &acts) != 0) return; /* out of memory: no error channel */
    KQ_MATMUL(kq_q5_0_rows, acts, AYA_Q5_0_BYTES, AYA_QK)
}

void KQ_FN(aya_matmul_q4_k)(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    KQ_MATMUL(kq_q4_k_rows, acts, AYA_Q4_K_BYTES, AYA_QK_K)
}

void KQ_FN(aya_matmul_q6_k)(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    KQ_MATMUL(kq_q6_k_rows, acts, AYA_Q6_K_BYTES, AYA_QK_K)
}
