/* Internal: the opt-in bf16-activation matmul (aya_matmul_bf16_bf16). Every ISA and the tests round activations with
 * the one function below, so they differ only in the order of the f32 sums. */
#ifndef AYA_BF16ACT_H
#define AYA_BF16ACT_H

#include "kernels_internal.h"

/* f32 -> bf16 like vcvtne2ps2bf16: round to nearest even; NaN stays NaN (quiet bit set); f32 denormals become signed
 * zero (the instruction treats them as zero); overflow rounds to inf. Branch-free, so loops over it vectorize. */
static inline uint16_t aya_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t magnitude = x & 0x7fffffffu;
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (x >> 16) | 0x40u;
    uint32_t signed_zero = (x >> 16) & 0x8000u;
    uint32_t r = magnitude > 0x7f800000u ? quiet_nan : magnitude < 0x00800000u ? signed_zero : rounded;
    return (uint16_t) r;
}

/* The scalar reference: x rounded to bf16, then aya_matmul_bf16_generic (exact products, sums in index order). */
void aya_matmul_bf16_bf16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                  int32_t out_stride, int32_t row_start, int32_t row_end);

/* The fallback of every ISA without a bf16 dot product: x rounded to bf16 (kept as f32 values) in a buffer private to
 * the calling thread, then that ISA's ordinary bf16 x f32 matmul. Writes nothing if that buffer cannot be allocated. */
void aya_matmul_bf16_bf16_rounded(aya_matmul_fn matmul_bf16_f32, const void *w, const float *x, float *out,
                                  int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);

#if defined(__x86_64__) || defined(_M_X64)
/* AVX512_BF16 (vdpbf16ps): x/bf16act_avx512.c. Only called when the CPU has AVX512_BF16 (aya_set_isa("avx512bf16")). */
void aya_matmul_bf16_bf16_avx512bf16(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                     int32_t out_stride, int32_t row_start, int32_t row_end);
#endif

#endif
