/* AVX2 + FMA + F16C matrix products. Weights widen to f32 exactly (bf16: shift; f16: vcvtph2ps); all math is f32 FMA.
 * Decode and steps of up to AYA_MV_FEW_TOKENS tokens (a few decoding sequences batched) are the shared loop of
 * matvec_loop.h around the micro-kernel below; more tokens (prefill) go to aya_gemm_avx2 in gemm_avx2.c. */
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

/* One 32-input step of x split for bf16 weights (matvec_loop.h): each half of 16 as its 8 even inputs, then its 8
 * odd ones, to meet the low and high halves of a 32-byte load of 16 weights. */
AYA_ALWAYS_INLINE void aya_mv_split_step(const float *src, float *dst) {
    for (int half = 0; half < 32; half += 16) {
        __m256 a = _mm256_loadu_ps(src + half), b = _mm256_loadu_ps(src + half + 8);
        /* per 128-bit lane [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit quarters in order 0 2 1 3 */
        __m256 even = _mm256_shuffle_ps(a, b, 0x88), odd = _mm256_shuffle_ps(a, b, 0xdd);
        _mm256_storeu_ps(dst + half, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xd8)));
        _mm256_storeu_ps(dst + half + 8, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(odd), 0xd8)));
    }
}
#define AYA_MV_SPLIT 1 /* matvec_loop.h: aya_mv_split_step and aya_matvec_few */

/* The decode micro-kernel for matvec_loop.h: 32 inputs per step, alternating between two accumulators per (row,
 * token) (8 independent FMA chains over a group of 4 rows); with several tokens, blocks of 1 row x 4 tokens (8
 * accumulators and 4 widened weight vectors of the 16 registers). */
#define AYA_MV_DECODE_AHEAD 1024 /* decode, 1 thread, from memory: 1.04-1.09x without (512: slower) */
#define AYA_MV_STEP 32
#define AYA_MV_NARROW 8
#define AYA_MV_TOKENS 4
#define AYA_MV_TOKEN_ROWS 1
typedef float aya_mv_x;
typedef struct { __m256 a0, a1; } aya_mv_acc;
typedef struct { __m256 x0, x1, x2, x3; } aya_mv_xs;
typedef struct { __m256 w0, w1, w2, w3; } aya_mv_w;

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_zero(void) {
    return (aya_mv_acc) { _mm256_setzero_ps(), _mm256_setzero_ps() };
}

AYA_ALWAYS_INLINE aya_mv_xs aya_mv_load_x(const float *x, size_t k) {
    return (aya_mv_xs) { _mm256_loadu_ps(x + k), _mm256_loadu_ps(x + k + 8),
                         _mm256_loadu_ps(x + k + 16), _mm256_loadu_ps(x + k + 24) };
}

AYA_ALWAYS_INLINE aya_mv_w aya_mv_load_w(int type, const void *row, size_t k) {
    if (type == AYA_BF16_SPLIT) {
        const __m256i high = _mm256_set1_epi32((int) 0xffff0000u);
        __m256i v0 = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) row + k));
        __m256i v1 = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) row + k + 16));
        return (aya_mv_w) { _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_castsi256_ps(_mm256_and_si256(v0, high)),
                            _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_castsi256_ps(_mm256_and_si256(v1, high)) };
    }
    return (aya_mv_w) { load8(type, row, k), load8(type, row, k + 8), load8(type, row, k + 16), load8(type, row, k + 24) };
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_fma(aya_mv_acc acc, aya_mv_w w, aya_mv_xs xs) {
    acc.a0 = _mm256_fmadd_ps(w.w0, xs.x0, acc.a0);
    acc.a1 = _mm256_fmadd_ps(w.w1, xs.x1, acc.a1);
    acc.a0 = _mm256_fmadd_ps(w.w2, xs.x2, acc.a0);
    acc.a1 = _mm256_fmadd_ps(w.w3, xs.x3, acc.a1);
    return acc;
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_narrow(aya_mv_acc acc, int type, const void *row, size_t k, const float *x) {
    acc.a0 = _mm256_fmadd_ps(load8(type, row, k), _mm256_loadu_ps(x + k), acc.a0);
    return acc;
}

AYA_ALWAYS_INLINE float aya_mv_finish(aya_mv_acc acc, int type, const void *row, size_t k, const float *x,
                                      size_t in_dim) {
    float sum = hsum(_mm256_add_ps(acc.a0, acc.a1));
    for (; k < in_dim; k++) sum += load1(type, row, k) * x[k];
    return sum;
}

#include "matvec_loop.h"

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, load8(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

#define AYA_MATMUL_AVX2(name, type)                                                                        \
    static void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,           \
                     int32_t out_stride, int32_t row_start, int32_t row_end) {                            \
        if (tokens <= AYA_MV_FEW_TOKENS) aya_matvec_few(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end); \
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
