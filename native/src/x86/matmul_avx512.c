/* AVX-512 (F, BW, VL, DQ) matrix products: the AVX2 design with 16-wide vectors. Weights widen to f32 exactly and all
 * math is f32 FMA, so results match the scalar path within f32 rounding. (AVX512_BF16's vdpbf16ps would round the
 * activations to bf16 and change the numerics: not used here.)
 * Decode (tokens == 1) streams 4 weight rows at once with prefetch. Several tokens (prefill) go to aya_gemm_avx512 in
 * gemm_avx512.c. */
#ifdef AYA_EMULATE_AVX512
/* Test build only (see CMakeLists.txt): the same code on SIMDe's portable AVX-512, so CPUs without AVX-512 run it. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { PREFETCH_BYTES = 512 };          /* decode: how far ahead of each weight row to prefetch */

/* 16 weights at w[i..i+16) widened to f32. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE __m512 load16(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return _mm512_loadu_ps((const float *) w + i);
    }
    __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) w + i));
    if (type == AYA_WEIGHT_F16) {
        return _mm512_cvtph_ps(h);
    }
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

AYA_ALWAYS_INLINE float load1(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

AYA_ALWAYS_INLINE float hsum(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

/* R rows x T tokens of dot products over k in [0, kc): rows at w + r*w_stride (type), tokens at x + t*x_stride.
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R, T, type and prefetch are constants where inlined. */
AYA_ALWAYS_INLINE void micro(int type, const void *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                             float *o, size_t o_stride, int accumulate, int prefetch, const int R, const int T) {
    __m512 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    int32_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 xv[3];
        for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_ps(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
            if (prefetch) {
                _mm_prefetch((const char *) w + ((size_t) r * w_stride + k) * wsize + PREFETCH_BYTES, _MM_HINT_T0);
            }
            __m512 wv = load16(type, w, (size_t) r * w_stride + k);
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) {
            float sum = hsum(acc[r][t]);
            for (int32_t kk = k; kk < kc; kk++) {
                sum += load1(type, w, (size_t) r * w_stride + kk) * x[(size_t) t * x_stride + kk];
            }
            float *dst = o + (size_t) t * o_stride + r;
            *dst = accumulate ? *dst + sum : sum;
        }
    }
}

AYA_ALWAYS_INLINE void matvec(int type, const void *w, const float *x, float *out,
                              int32_t in_dim, int32_t row_start, int32_t row_end) {
    size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2;
    int32_t r = row_start;
    for (; r + 4 <= row_end; r += 4) {
        const char *rows = (const char *) w + (size_t) r * (size_t) in_dim * wsize;
        micro(type, rows, (size_t) in_dim, x, 0, in_dim, out + r, 0, 0, 1, 4, 1);
    }
    for (; r < row_end; r++) {
        const char *row = (const char *) w + (size_t) r * (size_t) in_dim * wsize;
        micro(type, row, (size_t) in_dim, x, 0, in_dim, out + r, 0, 0, 1, 1, 1);
    }
}

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(dst + k, load16(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

#define AYA_MATMUL_AVX512(name, type)                                                                        \
    static void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,           \
                     int32_t out_stride, int32_t row_start, int32_t row_end) {                            \
        if (tokens == 1) matvec(type, w, x, out, in_dim, row_start, row_end);                             \
        else aya_gemm_avx512(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);            \
    }

AYA_MATMUL_AVX512(matmul_f32_avx512, AYA_WEIGHT_F32)
AYA_MATMUL_AVX512(matmul_f16_avx512, AYA_WEIGHT_F16)
AYA_MATMUL_AVX512(matmul_bf16_avx512, AYA_WEIGHT_BF16)

#define AYA_EMBED_AVX512(name, type)                                                                         \
    static void name(const void *table, int64_t row, int32_t dim, float *out) {                           \
        widen_row(type, table, (size_t) row * (size_t) dim, dim, out);                                    \
    }

AYA_EMBED_AVX512(embed_f16_avx512, AYA_WEIGHT_F16)
AYA_EMBED_AVX512(embed_bf16_avx512, AYA_WEIGHT_BF16)

/* ops_avx2.c: the AVX2 ops run on every AVX-512 CPU */
void aya_layernorm_avx2(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
void aya_attention_avx2(const float *q, const float *k_cache, const float *v_cache, float *out,
                        int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                        int32_t capacity, int32_t window, float scale, float *scratch,
                        int32_t item_start, int32_t item_end);
void aya_swiglu_avx2(float *gate, const float *up, int64_t start, int64_t end);
void aya_softmax_avx2(float *x, int32_t n);

const aya_kernel_table aya_table_avx512 = {
    .isa = "avx512",
    .matmul = { matmul_f32_avx512, matmul_f16_avx512, matmul_bf16_avx512, aya_matmul_q8_0_avx512, aya_matmul_q4_0_avx512 },
    .embed = { aya_embed_f32_generic, embed_f16_avx512, embed_bf16_avx512, NULL, NULL },
    /* element-wise ops and attention are small next to the matrix products: the AVX2 versions serve */
    .layernorm = aya_layernorm_avx2,
    .rope_interleaved = aya_rope_interleaved_generic,
    .attention = aya_attention_avx2,
    .swiglu = aya_swiglu_avx2,
    .softmax = aya_softmax_avx2,
};
