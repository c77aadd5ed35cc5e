/* AVX2 + FMA + F16C matrix products. Weights widen to f32 exactly (bf16: shift; f16: vcvtph2ps); all math is f32 FMA.
 * Decode (tokens == 1) streams 4 weight rows at once, two accumulators each, prefetching rows ~64 KiB ahead.
 * Several tokens (prefill) go to aya_gemm_avx2 in gemm_avx2.c. */
#include <immintrin.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 weights at w[i..i+8) widened to f32. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE __m256 load8(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return _mm256_loadu_ps((const float *) w + i);
    }
    __m128i h = _mm_loadu_si128((const __m128i *) ((const uint16_t *) w + i));
    if (type == AYA_WEIGHT_F16) {
        return _mm256_cvtph_ps(h);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AYA_ALWAYS_INLINE float load1(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

AYA_ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Decode: R rows (a constant) dotted with one x, 32 inputs per step with two accumulators per row (8 independent FMA
 * chains for R = 4). pf, when not NULL, is where row 0 of a group of rows further on starts: its R rows (at the same
 * stride) are prefetched at the offset being read. Each row's sum depends only on that row, so the split over threads
 * never changes a bit. */
AYA_ALWAYS_INLINE void matvec_rows(int type, const void *w, size_t in_dim, const float *x, float *out,
                                   const char *pf, const int R) {
    const size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    __m256 acc0[4], acc1[4];
    for (int r = 0; r < R; r++) {
        acc0[r] = _mm256_setzero_ps();
        acc1[r] = _mm256_setzero_ps();
    }
    size_t k = 0;
    for (; k + 32 <= in_dim; k += 32) {
        if (pf != NULL) {
            for (int r = 0; r < R; r++) {
                for (size_t b = 0; b < 32 * wsize; b += 64) {  /* one or two cache lines per row per step */
                    _mm_prefetch(pf + ((size_t) r * in_dim + k) * wsize + b, _MM_HINT_T0);
                }
            }
        }
        __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
        __m256 x2 = _mm256_loadu_ps(x + k + 16), x3 = _mm256_loadu_ps(x + k + 24);
        for (int r = 0; r < R; r++) {
            acc0[r] = _mm256_fmadd_ps(load8(type, w, (size_t) r * in_dim + k), x0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(load8(type, w, (size_t) r * in_dim + k + 8), x1, acc1[r]);
            acc0[r] = _mm256_fmadd_ps(load8(type, w, (size_t) r * in_dim + k + 16), x2, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(load8(type, w, (size_t) r * in_dim + k + 24), x3, acc1[r]);
        }
    }
    for (; k + 8 <= in_dim; k += 8) {
        __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < R; r++) acc0[r] = _mm256_fmadd_ps(load8(type, w, (size_t) r * in_dim + k), xv, acc0[r]);
    }
    for (int r = 0; r < R; r++) {
        float sum = hsum(_mm256_add_ps(acc0[r], acc1[r]));
        for (size_t kk = k; kk < in_dim; kk++) sum += load1(type, w, (size_t) r * in_dim + kk) * x[kk];
        out[r] = sum;
    }
}

AYA_ALWAYS_INLINE void matvec(int type, const void *w, const float *x, float *out,
                              int32_t in_dim, int32_t row_start, int32_t row_end) {
    size_t row_bytes = (size_t) in_dim * (type == AYA_WEIGHT_F32 ? 4 : 2);
    int32_t ahead = aya_decode_prefetch_rows(row_bytes, 4);
    int32_t r = row_start;
    for (; r + 4 <= row_end; r += 4) {
        const char *rows = (const char *) w + (size_t) r * row_bytes;
        /* only rows of this slice: past its end are another thread's rows or another matrix */
        const char *pf = r + ahead + 4 <= row_end ? rows + (size_t) ahead * row_bytes : NULL;
        matvec_rows(type, rows, (size_t) in_dim, x, out + r, pf, 4);
    }
    for (; r < row_end; r++) {
        matvec_rows(type, (const char *) w + (size_t) r * row_bytes, (size_t) in_dim, x, out + r, NULL, 1);
    }
}

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, load8(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

#define AYA_MATMUL_AVX2(name, type)                                                                        \
    static void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,           \
                     int32_t out_stride, int32_t row_start, int32_t row_end) {                            \
        if (tokens == 1) matvec(type, w, x, out, in_dim, row_start, row_end);                             \
        else aya_gemm_avx2(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);               \
    }

AYA_MATMUL_AVX2(matmul_f32_avx2, AYA_WEIGHT_F32)
AYA_MATMUL_AVX2(matmul_f16_avx2, AYA_WEIGHT_F16)
AYA_MATMUL_AVX2(matmul_bf16_avx2, AYA_WEIGHT_BF16)

#define AYA_EMBED_AVX2(name, type)                                                                         \
    static void name(const void *table, int64_t row, int32_t dim, float *out) {                           \
        widen_row(type, table, (size_t) row * (size_t) dim, dim, out);                                    \
    }

AYA_EMBED_AVX2(embed_f16_avx2, AYA_WEIGHT_F16)
AYA_EMBED_AVX2(embed_bf16_avx2, AYA_WEIGHT_BF16)

/* ops_avx2.c */
void aya_layernorm_avx2(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
void aya_attention_avx2(const float *q, const float *k_cache, const float *v_cache, float *out,
                        int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                        int32_t capacity, int32_t window, float scale, float *scratch,
                        int32_t item_start, int32_t item_end);
void aya_swiglu_avx2(float *gate, const float *up, int64_t start, int64_t end);
void aya_softmax_avx2(float *x, int32_t n);

const aya_kernel_table aya_table_avx2 = {
    .isa = "avx2",
    .matmul = { matmul_f32_avx2, matmul_f16_avx2, matmul_bf16_avx2, aya_matmul_q8_0_avx2, aya_matmul_q4_0_avx2 },
    .embed = { aya_embed_f32_generic, embed_f16_avx2, embed_bf16_avx2, NULL, NULL },
    .layernorm = aya_layernorm_avx2,
    .rope_interleaved = aya_rope_interleaved_generic, /* a few thousand multiplies per token: not worth SIMD */
    .attention = aya_attention_avx2,
    .swiglu = aya_swiglu_avx2,
    .softmax = aya_softmax_avx2,
};
