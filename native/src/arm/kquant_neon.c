/* NEON Q5_0 / Q4_K / Q6_K matrix products (baseline AArch64 Advanced SIMD: no dot-product extension needed).
 * The weights unpack to signed bytes (Q5_0: -16..15, Q4_K: 0..15, Q6_K: -32..31), multiply the int8 activations with
 * vmull_s8 / vmlal_s8 (two products per int16 lane: |sum| <= 2 * 32 * 128, no overflow) and widen-add into int32
 * lanes; each 16 or 32 values' sum takes its integer scale. The integers are the scalar kernels', and so is the f32
 * arithmetic per block, in the same order (up to the compiler fusing a multiply-add). */
#include <arm_neon.h>

#include "kquant.h"

/* acc + the 16 products a[i] * b[i], summed pairwise into 4 int32 lanes */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(acc, p);
}

static float dot_q5_0_neon(const uint8_t *row, const aya_q8_acts *acts, size_t token, int32_t in_dim) {
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * (in_dim / AYA_QK);
    static const uint8_t bit_of[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t bits = vld1q_u8(bit_of), low4 = vdupq_n_u8(0x0F), fifth = vdupq_n_u8(0x10), sixteen = vdupq_n_u8(16);
    float sum = 0.0f;
    for (int32_t b = 0; b < in_dim / AYA_QK; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q5_0_BYTES;
        uint8x16_t nib = vld1q_u8(blk + 6);
        /* byte j of the 5th bits: bit j % 8 of byte j / 8 of blk[2..5] */
        uint8x16_t h0 = vcombine_u8(vdup_n_u8(blk[2]), vdup_n_u8(blk[3])), h1 = vcombine_u8(vdup_n_u8(blk[4]), vdup_n_u8(blk[5]));
        uint8x16_t v0 = vorrq_u8(vandq_u8(nib, low4), vandq_u8(vtstq_u8(h0, bits), fifth));
        uint8x16_t v1 = vorrq_u8(vshrq_n_u8(nib, 4), vandq_u8(vtstq_u8(h1, bits), fifth));
        int32x4_t acc = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vsubq_u8(v0, sixteen)), vld1q_s8(xq + b * AYA_QK));
        acc = dot16(acc, vreinterpretq_s8_u8(vsubq_u8(v1, sixteen)), vld1q_s8(xq + b * AYA_QK + 16));
        sum += (float) vaddvq_s32(acc) * (aya_f16_to_f32(aya_load_u16(blk)) * xd[b]);
    }
    return sum;
}

static float dot_q4_k_neon(const uint8_t *row, const aya_q8k_acts *acts, size_t token, int32_t in_dim) {
    int32_t blocks = in_dim / AYA_QK_K;
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * blocks;
    const int16_t *xs = acts->bsum + token * (in_dim / 16);
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q4_K_BYTES;
        const int8_t *x = xq + (size_t) b * AYA_QK_K;
        int32x4_t acc = vdupq_n_s32(0);
        int32_t mins = 0;
        for (int g = 0; g < 4; g++) { /* 32 bytes: sub-block 2g in the low nibbles, 2g + 1 in the high ones */
            uint8x16_t q0 = vld1q_u8(blk + 16 + 32 * g), q1 = vld1q_u8(blk + 32 + 32 * g);
            uint8_t sc0, m0, sc1, m1;
            aya_q4_k_scale_min(blk + 4, 2 * g, &sc0, &m0);
            aya_q4_k_scale_min(blk + 4, 2 * g + 1, &sc1, &m1);
            int32x4_t lo = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q0, low4)), vld1q_s8(x + 64 * g));
            lo = dot16(lo, vreinterpretq_s8_u8(vandq_u8(q1, low4)), vld1q_s8(x + 64 * g + 16));
            int32x4_t hi = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vld1q_s8(x + 64 * g + 32));
            hi = dot16(hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(x + 64 * g + 48));
            acc = vmlaq_n_s32(vmlaq_n_s32(acc, lo, sc0), hi, sc1);
            mins += m0 * (xs[b * 16 + 4 * g] + xs[b * 16 + 4 * g + 1]) + m1 * (xs[b * 16 + 4 * g + 2] + xs[b * 16 + 4 * g + 3]);
        }
        float d = aya_f16_to_f32(aya_load_u16(blk)) * xd[b], dmin = aya_f16_to_f32(aya_load_u16(blk + 2)) * xd[b];
        sum += d * (float) vaddvq_s32(acc) - dmin * (float) mins;
    }
    return sum;
}

static float dot_q6_k_neon(const uint8_t *row, const aya_q8k_acts *acts, size_t token, int32_t in_dim) {
    int32_t blocks = in_dim / AYA_QK_K;
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * blocks;
    const uint8x16_t low4 = vdupq_n_u8(0x0F), two = vdupq_n_u8(0x03);
    const int8x16_t thirty_two = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q6_K_BYTES;
        const int8_t *sc = (const int8_t *) (blk + 192);
        const int8_t *x = xq + (size_t) b * AYA_QK_K;
        int32x4_t acc = vdupq_n_s32(0);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
            for (int l = 0; l < 32; l += 16) { /* values 128 * half + 32k + l .. + 15 for k < 4: groups 8 * half + 2k + l / 16 */
                uint8x16_t lo0 = vld1q_u8(ql + l), lo1 = vld1q_u8(ql + l + 32), h = vld1q_u8(qh + l);
                uint8x16_t u[4] = {
                    vorrq_u8(vandq_u8(lo0, low4), vshlq_n_u8(vandq_u8(h, two), 4)),
                    vorrq_u8(vandq_u8(lo1, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), two), 4)),
                    vorrq_u8(vshrq_n_u8(lo0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), two), 4)),
                    vorrq_u8(vshrq_n_u8(lo1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4)),
                };
                for (int k = 0; k < 4; k++) {
                    int at = 128 * half + 32 * k + l;
                    int32x4_t p = dot16(vdupq_n_s32(0), vsubq_s8(vreinterpretq_s8_u8(u[k]), thirty_two), vld1q_s8(x + at));
                    acc = vmlaq_n_s32(acc, p, sc[at / 16]);
                }
            }
        }
        sum += aya_f16_to_f32(aya_load_u16(blk + 208)) * xd[b] * (float) vaddvq_s32(acc);
    }
    return sum;
}

static void matmul_q5_0_neon(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8_acts acts;
    if (aya_quantize_activations(x, tokens, in_dim, &acts) != 0) return; /* out of memory: no error channel */
    AYA_KQUANT_MATMUL(dot_q5_0_neon, AYA_Q5_0_BYTES, AYA_QK)
}

static void matmul_q4_k_neon(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    AYA_KQUANT_MATMUL(dot_q4_k_neon, AYA_Q4_K_BYTES, AYA_QK_K)
}

static void matmul_q6_k_neon(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    AYA_KQUANT_MATMUL(dot_q6_k_neon, AYA_Q6_K_BYTES, AYA_QK_K)
}

const aya_kquant_table aya_kquant_neon = {matmul_q5_0_neon, matmul_q4_k_neon, matmul_q6_k_neon};
