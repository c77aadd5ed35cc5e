/* Internal: the table of kernels one instruction set provides, and the helpers every ISA file shares. */
#ifndef AYA_KERNELS_INTERNAL_H
#define AYA_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aya_kernels.h"

typedef void (*aya_matmul_fn)(const void *w, const float *x, float *out,
                              int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
typedef void (*aya_embed_fn)(const void *table, int64_t row, int32_t dim, float *out);

/* One instruction set's kernels. Indexed by enum aya_weight_type where per-type; NULL = not implemented (Q8_0/Q4_0 for now). */
typedef struct aya_kernel_table {
    const char   *isa;
    aya_matmul_fn matmul[5];
    aya_embed_fn  embed[5];
    void (*layernorm)(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
    void (*rope_interleaved)(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                             const float *cos, const float *sin);
    void (*attention)(const float *q, const float *k_cache, const float *v_cache, float *out,
                      int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                      int32_t capacity, int32_t window, float scale, float *scratch, int32_t item_start, int32_t item_end);
    void (*swiglu)(float *gate, const float *up, int64_t start, int64_t end);
    void (*softmax)(float *x, int32_t n);
} aya_kernel_table;

extern const aya_kernel_table aya_table_generic;
#if defined(__x86_64__) || defined(_M_X64)
extern const aya_kernel_table aya_table_avx2;
extern const aya_kernel_table aya_table_avx512;
#endif
#if defined(__aarch64__)
extern const aya_kernel_table aya_table_neon;
#endif

/* The scalar kernels, reused by ISA tables for ops they do not specialise. */
void aya_matmul_f32_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_f16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_bf16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_embed_f32_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_embed_f16_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_embed_bf16_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_layernorm_generic(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
void aya_rope_interleaved_generic(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                                  const float *cos, const float *sin);
void aya_attention_generic(const float *q, const float *k_cache, const float *v_cache, float *out,
                           int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                           int32_t capacity, int32_t window, float scale, float *scratch,
                           int32_t item_start, int32_t item_end);
void aya_swiglu_generic(float *gate, const float *up, int64_t start, int64_t end);
void aya_softmax_generic(float *x, int32_t n);

/* bf16 is the top half of an f32: widening is exact. */
static inline float aya_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t) h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE half to f32, exact for every value (normals, subnormals, inf, NaN). */
static inline float aya_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {                 /* inf / NaN */
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {             /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {            /* signed zero */
        bits = sign;
    } else {                           /* subnormal: shift the mantissa up to a normal f32 */
        int e = -1;
        do { mant <<= 1; e++; } while ((mant & 0x400u) == 0);
        bits = sign | ((uint32_t) (112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Keys visible to the query at position pos: [lo, pos]. */
static inline int32_t aya_first_visible_key(int32_t pos, int32_t window) {
    int32_t lo = window > 0 ? pos - window + 1 : 0;
    return lo > 0 ? lo : 0;
}

#endif
