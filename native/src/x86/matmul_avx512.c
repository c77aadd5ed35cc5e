/* AVX-512 (F, BW, VL, DQ) matrix products: the AVX2 design with 16-wide vectors. Weights widen to f32 exactly and all
 * math is f32 FMA, so results match the scalar path within f32 rounding. (AVX512_BF16's vdpbf16ps would round the
 * activations to bf16 and change the numerics: not used here.)
 * Decode and steps of up to AYA_MV_FEW_TOKENS tokens (a few decoding sequences batched) are the shared loop of
 * matvec_loop.h around the micro-kernel below; more tokens (prefill) go to aya_gemm_avx512 in gemm_avx512.c. */
#ifdef AYA_EMULATE_AVX512
/* Test build only (see CMakeLists.txt): the same code on SIMDe's portable AVX-512, so CPUs without AVX-512 run it. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))
#ifdef AYA_EMULATE_AVX512
#define AYA_IN_REGISTER(v) ((void) 0) /* SIMDe's vectors are structs */
#else
#define AYA_IN_REGISTER(v) __asm__("" : "+v"(v)) /* v must be in a register here: no load folded into its uses */
#endif

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

/* One 32-input step of x split for bf16 weights (matvec_loop.h): its 16 even inputs, then its 16 odd ones, to meet
 * the low and high halves of a 64-byte load of 32 weights. */
AYA_ALWAYS_INLINE void aya_mv_split_step(const float *src, float *dst) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 16);
    _mm512_storeu_ps(dst, _mm512_permutex2var_ps(a, even, b));
    _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(a, odd, b));
}
#define AYA_MV_SPLIT 1 /* matvec_loop.h: aya_mv_split_step and aya_matvec_few */

/* The decode micro-kernel for matvec_loop.h: 32 inputs per step into one accumulator per (row, token) (two FMAs in a
 * chain); with several tokens, blocks of 4 rows x 4 tokens (16 accumulators, 8 widened weight vectors, 2 activation
 * vectors): each activation load feeds 8 FMAs, so a batch's activations (8 tokens of 11008 inputs: 352 KB) can stream
 * from L2. */
#define AYA_MV_DECODE_AHEAD 1024 /* decode, 1 thread, from memory: 1.05-1.13x without */
#define AYA_MV_STEP 32
#define AYA_MV_NARROW 16
#define AYA_MV_ALIGN 64 /* a 64-byte load that crosses a line costs about as much as the step */
#define AYA_MV_TOKENS 4
#define AYA_MV_TOKEN_ROWS 4
typedef float aya_mv_x;
typedef __m512 aya_mv_acc;
typedef struct { __m512 x0, x1; } aya_mv_xs;
typedef struct { __m512 w0, w1; } aya_mv_w;

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_zero(void) {
    return _mm512_setzero_ps();
}

AYA_ALWAYS_INLINE aya_mv_xs aya_mv_load_x(const float *x, size_t k) {
    aya_mv_xs xs = { _mm512_loadu_ps(x + k), _mm512_loadu_ps(x + k + 16) };
    /* in registers: loaded once for all rows of a block (the compiler would fold a load into every FMA, and the loads,
     * not the FMAs, would then set the pace) */
    AYA_IN_REGISTER(xs.x0);
    AYA_IN_REGISTER(xs.x1);
    return xs;
}

AYA_ALWAYS_INLINE aya_mv_w aya_mv_load_w(int type, const void *row, size_t k) {
    if (type == AYA_BF16_SPLIT) {
        __m512i v = _mm512_loadu_si512((const void *) ((const uint16_t *) row + k));
        return (aya_mv_w) { _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)),
                            _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int) 0xffff0000u))) };
    }
    return (aya_mv_w) { load16(type, row, k), load16(type, row, k + 16) };
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_fma(aya_mv_acc acc, aya_mv_w w, aya_mv_xs xs) {
    return _mm512_fmadd_ps(w.w1, xs.x1, _mm512_fmadd_ps(w.w0, xs.x0, acc));
}

/* Weights w[i, i + n) and inputs x[i, i + n) for n <= 16, widened, zero past n: nothing past n is read. */
#ifdef AYA_EMULATE_AVX512
AYA_ALWAYS_INLINE void load16_first(int type, const void *w, const float *x, size_t i, size_t n, __m512 *wv, __m512 *xv) {
    float wf[16] = { 0 }, xf[16] = { 0 }; /* SIMDe has no masked loads */
    for (size_t j = 0; j < n; j++) {
        wf[j] = load1(type, w, i + j);
        xf[j] = x[i + j];
    }
    *wv = _mm512_loadu_ps(wf);
    *xv = _mm512_loadu_ps(xf);
}
#else
AYA_ALWAYS_INLINE void load16_first(int type, const void *w, const float *x, size_t i, size_t n, __m512 *wv, __m512 *xv) {
    __mmask16 m = (__mmask16) ((1u << n) - 1u);
    *xv = _mm512_maskz_loadu_ps(m, x + i);
    if (type == AYA_WEIGHT_F32) {
        *wv = _mm512_maskz_loadu_ps(m, (const float *) w + i);
        return;
    }
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *) w + i);
    *wv = type == AYA_WEIGHT_F16 ? _mm512_cvtph_ps(h)
                                 : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_head(aya_mv_acc acc, int type, const void *row, size_t h, const float *x) {
    __m512 wv, xv;
    load16_first(type, row, x, 0, h < 16 ? h : 16, &wv, &xv);
    acc = _mm512_fmadd_ps(wv, xv, acc);
    if (h > 16) {
        load16_first(type, row, x, 16, h - 16, &wv, &xv);
        acc = _mm512_fmadd_ps(wv, xv, acc);
    }
    return acc;
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_narrow(aya_mv_acc acc, int type, const void *row, size_t k, const float *x) {
    return _mm512_fmadd_ps(load16(type, row, k), _mm512_loadu_ps(x + k), acc);
}

AYA_ALWAYS_INLINE float aya_mv_finish(aya_mv_acc acc, int type, const void *row, size_t k, const float *x,
                                      size_t in_dim) {
    float sum = hsum(acc);
    for (; k < in_dim; k++) sum += load1(type, row, k) * x[k];
    return sum;
}

#include "matvec_loop.h"

/* Widens n weights starting at w[i] into dst (f32). */
AYA_ALWAYS_INLINE void widen_row(int type, const void *w, size_t i, int32_t n, float *dst) {
    int32_t k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(dst + k, load16(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

#define AYA_MATMUL_AVX512(name, type)                                                                        \
    static void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,           \
                     int32_t out_stride, int32_t row_start, int32_t row_end) {                            \
        if (tokens <= AYA_MV_FEW_TOKENS) aya_matvec_few(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end); \
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
