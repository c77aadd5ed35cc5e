/* AVX2 Q8_0 / Q4_0 matrix products with integer dot products, llama.cpp style: activations are quantized per token to
 * Q8_0 (aya_quantize_activations, shared with the scalar code), then for each 32-weight block
 *   |w| (vpsignb) x sign-adjusted x (vpsignb) -> vpmaddubsw (u8 x s8 pairs -> s16) -> vpmaddwd by 1 (-> s32)
 * is the exact integer dot product, converted to f32 and FMA'd with d_w * d_x. Two rows share each activation load
 * and decode prefetches ahead in each row. Block scales widen with F16C (vcvtph2ps), exact like aya_f16_to_f32. */
#include <immintrin.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { PREFETCH_BYTES = 1024 };

AYA_ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 s32 partial sums of the 32 products w[j] * x[j] (int8 each; w may be -128, x never is). */
AYA_ALWAYS_INLINE __m256i dot32(__m256i w, __m256i x) {
    __m256i ax = _mm256_sign_epi8(w, w);  /* |w| as unsigned bytes */
    __m256i sx = _mm256_sign_epi8(x, w);  /* x with w's sign (0 where w is 0) */
    __m256i pairs = _mm256_maddubs_epi16(ax, sx); /* |pair sum| <= 2 * 128 * 127: no saturation */
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* The 32 weights of a Q4_0 block as int8 -8..7: low nibbles are elements 0..15, high nibbles 16..31. */
AYA_ALWAYS_INLINE __m256i unpack_q4(const uint8_t *qs) {
    __m128i packed = _mm_loadu_si128((const __m128i *) qs);
    __m128i lo = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

AYA_ALWAYS_INLINE __m256i load_block(int q4, const uint8_t *blk) {
    return q4 ? unpack_q4(blk + 2) : _mm256_loadu_si256((const __m256i *) (blk + 2));
}

/* R (1 or 2) rows . one token: rows at w, w + row_bytes. */
AYA_ALWAYS_INLINE void dot_rows(int q4, const uint8_t *w, size_t row_bytes, const int8_t *xq, const float *xs,
                                int32_t blocks, float *out, const int R, int prefetch) {
    const size_t bb = q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int32_t b = 0; b < blocks; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *) (xq + (size_t) b * AYA_QK));
        const uint8_t *b0 = w + (size_t) b * bb;
        if (prefetch) _mm_prefetch((const char *) b0 + PREFETCH_BYTES, _MM_HINT_T0);
        __m256 p0 = _mm256_cvtepi32_ps(dot32(load_block(q4, b0), x));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(aya_load_u16(b0)) * xs[b]), p0, acc0);
        if (R == 2) {
            const uint8_t *b1 = b0 + row_bytes;
            if (prefetch) _mm_prefetch((const char *) b1 + PREFETCH_BYTES, _MM_HINT_T0);
            __m256 p1 = _mm256_cvtepi32_ps(dot32(load_block(q4, b1), x));
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(aya_load_u16(b1)) * xs[b]), p1, acc1);
        }
    }
    out[0] = hsum(acc0);
    if (R == 2) out[1] = hsum(acc1);
}

AYA_ALWAYS_INLINE void matmul_q(int q4, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    float *xs;
    int8_t *xq = aya_quantize_activations(x, tokens, in_dim, &xs);
    if (xq == NULL) return;
    int32_t blocks = in_dim / AYA_QK;
    size_t row_bytes = (size_t) blocks * (q4 ? AYA_Q4_0_BYTES : AYA_Q8_0_BYTES);
    const uint8_t *base = (const uint8_t *) w;
    if (tokens == 1) { /* decode: stream the rows once, two at a time */
        float two[2];
        int32_t r = row_start;
        for (; r + 2 <= row_end; r += 2) {
            dot_rows(q4, base + (size_t) r * row_bytes, row_bytes, xq, xs, blocks, two, 2, 1);
            out[r] = two[0];
            out[r + 1] = two[1];
        }
        if (r < row_end) dot_rows(q4, base + (size_t) r * row_bytes, row_bytes, xq, xs, blocks, out + r, 1, 1);
        return;
    }
    for (int32_t r0 = row_start; r0 < row_end; r0 += AYA_Q_ROW_TILE) { /* prefill: a tile of rows stays in cache */
        int32_t r1 = r0 + AYA_Q_ROW_TILE < row_end ? r0 + AYA_Q_ROW_TILE : row_end;
        for (int32_t t = 0; t < tokens; t++) {
            const int8_t *xt = xq + (size_t) t * in_dim;
            const float *st = xs + (size_t) t * blocks;
            float *ot = out + (size_t) t * out_stride;
            int32_t r = r0;
            for (; r + 2 <= r1; r += 2) dot_rows(q4, base + (size_t) r * row_bytes, row_bytes, xt, st, blocks, ot + r, 2, 0);
            if (r < r1) dot_rows(q4, base + (size_t) r * row_bytes, row_bytes, xt, st, blocks, ot + r, 1, 0);
        }
    }
}

void aya_matmul_q8_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    matmul_q(0, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    matmul_q(1, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
