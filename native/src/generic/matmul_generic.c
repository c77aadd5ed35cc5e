/* Portable scalar matrix products and embedding lookups: the reference every ISA is tested against. */
#include "kernels_internal.h"

/* One dot product per (token, row); the weight type only changes how a weight widens to f32. */
#define AYA_MATMUL_GENERIC(name, wtype, widen)                                                             \
    void name(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,                 \
              int32_t out_stride, int32_t row_start, int32_t row_end) {                                   \
        const wtype *weights = (const wtype *) w;                                                         \
        for (int32_t r = row_start; r < row_end; r++) {                                                   \
            const wtype *row = weights + (size_t) r * (size_t) in_dim;                                    \
            for (int32_t t = 0; t < tokens; t++) {                                                        \
                const float *xt = x + (size_t) t * (size_t) in_dim;                                       \
                float sum = 0.0f;                                                                         \
                for (int32_t i = 0; i < in_dim; i++) {                                                    \
                    sum += widen(row[i]) * xt[i];                                                         \
                }                                                                                         \
                out[(size_t) t * (size_t) out_stride + (size_t) r] = sum;                                 \
            }                                                                                             \
        }                                                                                                 \
    }

#define AYA_WIDEN_F32(v) (v)
AYA_MATMUL_GENERIC(aya_matmul_f32_generic, float, AYA_WIDEN_F32)
AYA_MATMUL_GENERIC(aya_matmul_f16_generic, uint16_t, aya_f16_to_f32)
AYA_MATMUL_GENERIC(aya_matmul_bf16_generic, uint16_t, aya_bf16_to_f32)

void aya_embed_f32_generic(const void *table, int64_t row, int32_t dim, float *out) {
    memcpy(out, (const float *) table + (size_t) row * (size_t) dim, (size_t) dim * sizeof(float));
}

void aya_embed_f16_generic(const void *table, int64_t row, int32_t dim, float *out) {
    const uint16_t *src = (const uint16_t *) table + (size_t) row * (size_t) dim;
    for (int32_t i = 0; i < dim; i++) {
        out[i] = aya_f16_to_f32(src[i]);
    }
}

void aya_embed_bf16_generic(const void *table, int64_t row, int32_t dim, float *out) {
    const uint16_t *src = (const uint16_t *) table + (size_t) row * (size_t) dim;
    for (int32_t i = 0; i < dim; i++) {
        out[i] = aya_bf16_to_f32(src[i]);
    }
}
