/* NEON (AArch64 Advanced SIMD) matrix products: the AVX2 design with 4-wide vectors. Weights widen to f32 exactly
 * (bf16: shift; f16: fcvtl); all math is f32 FMA.
 * Decode (tokens == 1) is the shared loop of matvec_loop.h around the micro-kernel below; prefill widens a tile of
 * weight rows once into an L1-sized f32 buffer and reuses it for every 3 tokens (a 4-row x 3-token block of 12
 * accumulators). */
#include <arm_neon.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

enum { TILE_ROWS = 16, TILE_K = 256 };  /* prefill tile: 16 rows x 256 f32 = 16 KiB, fits L1 with x */

/* 4 weights at w[i..i+4) widened to f32. type is a compile-time constant at every call site. */
AYA_ALWAYS_INLINE float32x4_t load4(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) {
        return vld1q_f32((const float *) w + i);
    }
    uint16x4_t h = vld1_u16((const uint16_t *) w + i);
    if (type == AYA_WEIGHT_F16) {
        return vcvt_f32_f16(vreinterpret_f16_u16(h));
    }
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

AYA_ALWAYS_INLINE float load1(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

AYA_ALWAYS_INLINE float hsum(float32x4_t v) {
    return vaddvq_f32(v);
}

/* R rows x T tokens of dot products over k in [0, kc): rows at w + r*w_stride (type), tokens at x + t*x_stride.
 * Stores (or adds, when accumulate) into o[t*o_stride + r]. R, T and type are constants where inlined. */
AYA_ALWAYS_INLINE void micro(int type, const void *w, size_t w_stride, const float *x, size_t x_stride, int32_t kc,
                             float *o, size_t o_stride, int accumulate, const int R, const int T) {
    float32x4_t acc[4][3];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = vdupq_n_f32(0.0f);
    int32_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        float32x4_t xv[3];
        for (int t = 0; t < T; t++) xv[t] = vld1q_f32(x + (size_t) t * x_stride + k);
        for (int r = 0; r < R; r++) {
            float32x4_t wv = load4(type, w, (size_t) r * w_stride + k);
            for (int t = 0; t < T; t++) acc[r][t] = vfmaq_f32(acc[r][t], wv, xv[t]);
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

/* The decode micro-kernel for matvec_loop.h: one accumulator per row, 4 inputs per FMA, 16 per step. */
#define AYA_MV_STEP 16
#define AYA_MV_NARROW 4
#define AYA_MV_TOKENS 4
#define AYA_MV_TOKEN_ROWS 2
typedef float aya_mv_x;
typedef float32x4_t aya_mv_acc;
typedef struct { float32x4_t x0, x1, x2, x3; } aya_mv_xs;
typedef struct { float32x4_t w0, w1, w2, w3; } aya_mv_w;

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_zero(void) {
    return vdupq_n_f32(0.0f);
}

AYA_ALWAYS_INLINE aya_mv_xs aya_mv_load_x(const float *x, size_t k) {
    return (aya_mv_xs) { vld1q_f32(x + k), vld1q_f32(x + k + 4), vld1q_f32(x + k + 8), vld1q_f32(x + k + 12) };
}

AYA_ALWAYS_INLINE aya_mv_w aya_mv_load_w(int type, const void *row, size_t k) {
    return (aya_mv_w) { load4(type, row, k), load4(type, row, k + 4), load4(type, row, k + 8), load4(type, row, k + 12) };
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_fma(aya_mv_acc acc, aya_mv_w w, aya_mv_xs xs) {
    acc = vfmaq_f32(acc, w.w0, xs.x0);
    acc = vfmaq_f32(acc, w.w1, xs.x1);
    acc = vfmaq_f32(acc, w.w2, xs.x2);
    return vfmaq_f32(acc, w.w3, xs.x3);
}

AYA_ALWAYS_INLINE aya_mv_acc aya_mv_narrow(aya_mv_acc acc, int type, const void *row, size_t k, const float *x) {
    return vfmaq_f32(acc, load4(type, row, k), vld1q_f32(x + k));
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
    for (; k + 4 <= n; k += 4) vst1q_f32(dst + k, load4(type, w, i + (size_t) k));
    for (; k < n; k++) dst[k] = load1(type, w, i + (size_t) k);
}

AYA_ALWAYS_INLINE void matmul_tiled(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                    int32_t out_stride, int32_t row_start, int32_t row_end) {
    float tile[TILE_ROWS * TILE_K] __attribute__((aligned(64)));
    for (int32_t r0 = row_start; r0 < row_end; r0 += TILE_ROWS) {
        int32_t rows = row_end - r0 < TILE_ROWS ? row_end - r0 : TILE_ROWS;
        for (int32_t k0 = 0; k0 < in_dim; k0 += TILE_K) {
            int32_t kc = in_dim - k0 < TILE_K ? in_dim - k0 : TILE_K;
            int accumulate = k0 > 0;
            for (int32_t r = 0; r < rows; r++) {
                widen_row(type, w, (size_t) (r0 + r) * (size_t) in_dim + (size_t) k0, kc, tile + r * TILE_K);
            }
            for (int32_t t = 0; t < tokens; t += 3) {
                const float *xt = x + (size_t) t * (size_t) in_dim + (size_t) k0;
                float *ot = out + (size_t) t * (size_t) out_stride + (size_t) r0;
                int left = tokens - t; /* 1, 2 or 3+ tokens in this step */
                int32_t r = 0;
                for (; r + 4 <= rows; r += 4) {
                    const float *wt = tile + r * TILE_K;
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 4, 1);
                }
                for (; r < rows; r++) {
                    const float *wt = tile + r * TILE_K;
                    if (left >= 3)      micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 3);
                    else if (left == 2) micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 2);
                    else                micro(AYA_WEIGHT_F32, wt, TILE_K, xt, (size_t) in_dim, kc, ot + r, (size_t) out_stride, accumulate, 1, 1);
                }
            }
        }
    }
}

#define AYA_MATMUL_NEON(name, type)                                                                        \
    static void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,           \
                     int32_t out_stride, int32_t row_start, int32_t row_end) {                            \
        if (tokens <= AYA_MV_FEW_TOKENS) aya_matvec_tokens(type, w, x, (size_t) in_dim, out, tokens, in_dim, out_stride, row_start, row_end); \
        else matmul_tiled(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);              \
    }

AYA_MATMUL_NEON(matmul_f32_neon, AYA_WEIGHT_F32)
AYA_MATMUL_NEON(matmul_f16_neon, AYA_WEIGHT_F16)
AYA_MATMUL_NEON(matmul_bf16_neon, AYA_WEIGHT_BF16)

#define AYA_EMBED_NEON(name, type)                                                                         \
    static void name(const void *table, int64_t row, int32_t dim, float *out) {                           \
        widen_row(type, table, (size_t) row * (size_t) dim, dim, out);                                    \
    }

AYA_EMBED_NEON(embed_f16_neon, AYA_WEIGHT_F16)
AYA_EMBED_NEON(embed_bf16_neon, AYA_WEIGHT_BF16)

/* ops_neon.c */
void aya_layernorm_neon(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
void aya_attention_neon(const float *q, const float *k_cache, const float *v_cache, float *out,
                        int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                        int32_t capacity, int32_t window, float scale, float *scratch,
                        int32_t item_start, int32_t item_end);
void aya_swiglu_neon(float *gate, const float *up, int64_t start, int64_t end);
void aya_softmax_neon(float *x, int32_t n);

const aya_kernel_table aya_table_neon = {
    .isa = "neon",
    .matmul = { matmul_f32_neon, matmul_f16_neon, matmul_bf16_neon, aya_matmul_q8_0_generic, aya_matmul_q4_0_generic },
    .embed = { aya_embed_f32_generic, embed_f16_neon, embed_bf16_neon, NULL, NULL },
    .layernorm = aya_layernorm_neon,
    .rope_interleaved = aya_rope_interleaved_generic, /* a few thousand multiplies per token: not worth SIMD */
    .attention = aya_attention_neon,
    .swiglu = aya_swiglu_neon,
    .softmax = aya_softmax_neon,
};
