/* Internal: GGUF k-quant weights (Q5_0, Q4_K, Q6_K) — block layouts, Q8_K activations and each ISA's kernels. */
#ifndef AYA_KQUANT_H
#define AYA_KQUANT_H

#include "kernels_internal.h"

enum { AYA_QK_K = 256, AYA_Q5_0_BYTES = 22, AYA_Q4_K_BYTES = 144, AYA_Q6_K_BYTES = 210 };

/* Bytes per block (32 values) or super-block (256) of a quantized weight type. */
static inline size_t aya_block_bytes(int type) {
    switch (type) {
        case AYA_WEIGHT_Q8_0: return AYA_Q8_0_BYTES;
        case AYA_WEIGHT_Q4_0: return AYA_Q4_0_BYTES;
        case AYA_WEIGHT_Q5_0: return AYA_Q5_0_BYTES;
        case AYA_WEIGHT_Q4_K: return AYA_Q4_K_BYTES;
        default: return AYA_Q6_K_BYTES;
    }
}

/* One ISA's kernels for the three types; dispatch.c picks the set matching the active aya_kernel_table. */
typedef struct aya_kquant_table {
    aya_matmul_fn q5_0, q4_k, q6_k;
} aya_kquant_table;

extern const aya_kquant_table aya_kquant_generic;
#if defined(__x86_64__) || defined(_M_X64)
extern const aya_kquant_table aya_kquant_avx2;
extern const aya_kquant_table aya_kquant_avx512;
#endif
#if defined(__x86_64__) || defined(_M_X64)
/* AVX512-VNNI prefill of Q4_K / Q6_K (quant_avx512.c): both operands packed into 256-value steps, one int32 lane per
 * 16-value scale group; the avx512 table uses them from this many tokens on (fewer: the row kernels of kquant_x86.h). */
enum { AYA_OCT_MIN_TOKENS_K = 6 };
void aya_matmul_q4_k_avx512oct(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                               int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_avx512oct(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                               int32_t out_stride, int32_t row_start, int32_t row_end);
/* The same on AVX2 (quant_avx2.c, two 128-value steps per super-block); the avx2 table uses them from this many
 * tokens on. */
enum { AYA_QUAD_MIN_TOKENS_K = 6 };
void aya_matmul_q4_k_avx2quad(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                              int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_avx2quad(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                              int32_t out_stride, int32_t row_start, int32_t row_end);
#endif
#if defined(__aarch64__)
extern const aya_kquant_table aya_kquant_neon;
#endif

/* Activations quantized to Q8_K, [tokens, in_dim] (in_dim a multiple of 256): values q, one f32 scale d per 256 values
 * (not rounded: llama.cpp's block_q8_K keeps it f32) and the sums of every 16 consecutive q (block_q8_K.bsums). */
typedef struct aya_q8k_acts {
    const int8_t *q;
    const float *d;
    const int16_t *bsum;
} aya_q8k_acts;

/* Quantizes x [tokens, in_dim] exactly as quantize_row_q8_K_ref into buffers private to the calling thread, valid until
 * its next call. Returns 0, or -1 if memory runs out. Every ISA uses this one (~1 ns per value); up to
 * AYA_Q8K_REUSE_TOKENS tokens a call with the same values of x as the thread's last call reuses its result. */
enum { AYA_Q8K_REUSE_TOKENS = 4 };
int aya_quantize_activations_q8_k(const float *x, int32_t tokens, int32_t in_dim, aya_q8k_acts *acts);

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K super-block's 12 scale bytes (ggml's get_scale_min_k4). */
static inline void aya_q4_k_scale_min(const uint8_t *scales, int j, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = scales[j] & 63;
        *min = scales[j + 4] & 63;
    } else {
        *scale = (uint8_t) ((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4));
        *min = (uint8_t) ((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* S and M of each of the sixteen 16-value groups of a Q4_K or Q6_K super-block (blk), whose values are S q - M with q
 * unsigned: Q4_K S = d x scale, M = dmin x min of the group's 32-value sub-block; Q6_K S = d x the group's scale,
 * M = 32 S (q = the stored 6 bits, the value's + 32). What the packed prefill layouts store per group. */
static inline void aya_k_group_scales(int kind, const uint8_t *blk, float s[16], float m[16]) {
    if (kind == AYA_WEIGHT_Q4_K) {
        float d = aya_f16_to_f32(aya_load_u16(blk)), dmin = aya_f16_to_f32(aya_load_u16(blk + 2));
        for (int j = 0; j < 8; j++) {
            uint8_t scale, min;
            aya_q4_k_scale_min(blk + 4, j, &scale, &min);
            s[2 * j] = s[2 * j + 1] = d * (float) scale;
            m[2 * j] = m[2 * j + 1] = dmin * (float) min;
        }
    } else {
        float d = aya_f16_to_f32(aya_load_u16(blk + 208));
        for (int g = 0; g < 16; g++) {
            s[g] = d * (float) (int8_t) blk[192 + g];
            m[g] = 32.0f * s[g];
        }
    }
}

/* Dequantizes n values (a multiple of the type's block) of a row starting at `row` into out: the reference the tests
 * compare kernels and gguf-py's dequantizer with. type: AYA_WEIGHT_Q5_0, _Q4_K or _Q6_K. */
void aya_dequantize_kquant(int type, const void *row, int32_t n, float *out);

/* The body of a matmul over one-row dot functions dot(row, &acts, token, in_dim) (scalar and NEON): tiles of rows kept
 * hot while every token passes; `acts` is the quantized x of the type's activation format. */
#define AYA_KQUANT_MATMUL(dot, block_bytes, block_values)                                                              \
    size_t row_bytes = (size_t) (in_dim / (block_values)) * (block_bytes);                                              \
    for (int32_t r0 = row_start; r0 < row_end; r0 += AYA_Q_ROW_TILE) {                                                  \
        int32_t r1 = r0 + AYA_Q_ROW_TILE < row_end ? r0 + AYA_Q_ROW_TILE : row_end;                                    \
        for (int32_t t = 0; t < tokens; t++) {                                                                          \
            for (int32_t r = r0; r < r1; r++) {                                                                         \
                out[(size_t) t * out_stride + r] = dot((const uint8_t *) w + (size_t) r * row_bytes, &acts, (size_t) t, \
                                                       in_dim);                                                         \
            }                                                                                                           \
        }                                                                                                               \
    }

#endif
