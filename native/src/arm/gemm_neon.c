/* NEON (AArch64 Advanced SIMD) matrix products for several tokens (prefill): the loops of gemm_loops.h around a
 * 6-token x 16-row outer-product micro-kernel (24 of the 32 q registers accumulate), with an 8 x 8 packing block made
 * of four 4 x 4 transposes. Weights widen to f32 exactly (bf16: shift; f16: fcvtl); all math is f32 FMA. */
#include <arm_neon.h>

#include "kernels_internal.h"

#define AYA_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Block sizes (gemm_loops.h), as AVX2's: a panel of 16 rows x KC inputs is 16 KiB and stays in L1. */
enum { PANEL = 16, KC = 256, NC = 128, MR = 6, MC_MAX = 256, PACK_G = 8 };

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

typedef float32x4_t gemm_vec;
enum { VLEN = 4 };
AYA_ALWAYS_INLINE gemm_vec vec_zero(void) { return vdupq_n_f32(0.0f); }
AYA_ALWAYS_INLINE gemm_vec vec_load(const float *p) { return vld1q_f32(p); }
AYA_ALWAYS_INLINE void vec_store(float *p, gemm_vec v) { vst1q_f32(p, v); }
AYA_ALWAYS_INLINE gemm_vec vec_widen(int type, const void *w, size_t i) { return load4(type, w, i); }
AYA_ALWAYS_INLINE gemm_vec vec_fma(gemm_vec a, gemm_vec b, gemm_vec acc) { return vfmaq_f32(acc, a, b); }
AYA_ALWAYS_INLINE float vec_sum(gemm_vec v) { return vaddvq_f32(v); }

/* Rows a[0..3] (4 values each) transposed: out[j] = (a[0][j], a[1][j], a[2][j], a[3][j]). */
AYA_ALWAYS_INLINE void transpose4(const float32x4_t a[4], float32x4_t out[4]) {
    float32x4x2_t p01 = vtrnq_f32(a[0], a[1]), p23 = vtrnq_f32(a[2], a[3]);
    out[0] = vcombine_f32(vget_low_f32(p01.val[0]), vget_low_f32(p23.val[0]));
    out[1] = vcombine_f32(vget_low_f32(p01.val[1]), vget_low_f32(p23.val[1]));
    out[2] = vcombine_f32(vget_high_f32(p01.val[0]), vget_high_f32(p23.val[0]));
    out[3] = vcombine_f32(vget_high_f32(p01.val[1]), vget_high_f32(p23.val[1]));
}

/* dst[j * dst_stride + r] = src[r][i + j] for r, j < 8 (rows from `live` on are zeros); per j, lanes 0-3 then 4-7,
 * j in order (the contract of gemm_loops.h). */
AYA_ALWAYS_INLINE void pack_block(int type, const void *const src[8], int live, size_t i, float *dst, size_t dst_stride) {
    float32x4_t lo[8], hi[8]; /* elements i..i+3 and i+4..i+7 of each row */
    for (int r = 0; r < 8; r++) {
        lo[r] = r < live ? load4(type, src[r], i) : vdupq_n_f32(0.0f);
        hi[r] = r < live ? load4(type, src[r], i + 4) : vdupq_n_f32(0.0f);
    }
    float32x4_t c[4][4]; /* [block][j]: blocks rows 0-3 x lo, rows 4-7 x lo, rows 0-3 x hi, rows 4-7 x hi */
    transpose4(lo, c[0]);
    transpose4(lo + 4, c[1]);
    transpose4(hi, c[2]);
    transpose4(hi + 4, c[3]);
    for (int j = 0; j < 8; j++) {
        int half = j / 4; /* 0: elements from lo, 1: from hi */
        vst1q_f32(dst + (size_t) j * dst_stride, c[2 * half][j % 4]);
        vst1q_f32(dst + (size_t) j * dst_stride + 4, c[2 * half + 1][j % 4]);
    }
}

/* The micro-kernel (contract in gemm_loops.h): T tokens x 16 rows in 4T registers over kc inputs; per input it loads
 * four weight vectors and broadcasts one x per token (ld1r). */
AYA_ALWAYS_INLINE void kernel(const float *panel, const float *xp, int32_t kc, const float *c_in,
                              float *c_out, size_t c_stride, int32_t rows, const int T) {
    float32x4_t acc[MR][4];
    for (int t = 0; t < T; t++)
        for (int q = 0; q < 4; q++) acc[t][q] = c_in != NULL ? vld1q_f32(c_in + t * PANEL + 4 * q) : vdupq_n_f32(0.0f);
    for (int32_t k = 0; k < kc; k++) {
        float32x4_t w[4];
        for (int q = 0; q < 4; q++) w[q] = vld1q_f32(panel + (size_t) k * PANEL + 4 * q);
        for (int t = 0; t < T; t++) {
            float32x4_t xb = vld1q_dup_f32(xp + (size_t) k * MR + t);
            for (int q = 0; q < 4; q++) acc[t][q] = vfmaq_f32(acc[t][q], w[q], xb);
        }
    }
    for (int t = 0; t < T; t++) {
        float *dst = c_out + (size_t) t * c_stride;
        if (rows == PANEL) {
            for (int q = 0; q < 4; q++) vst1q_f32(dst + 4 * q, acc[t][q]);
        } else {
            float tmp[PANEL];
            for (int q = 0; q < 4; q++) vst1q_f32(tmp + 4 * q, acc[t][q]);
            memcpy(dst, tmp, (size_t) rows * sizeof(float));
        }
    }
}

#include "gemm_loops.h"

void aya_gemm_neon(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end) {
    gemm_any_type(type, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
