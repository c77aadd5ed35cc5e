/* Portable scalar LayerNorm, RoPE, attention, SwiGLU and softmax: the reference every ISA is tested against. */
#include <math.h>

#include "kernels_internal.h"

void aya_layernorm_generic(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps) {
    for (int32_t t = 0; t < tokens; t++) {
        const float *xt = x + (size_t) t * (size_t) dim;
        float *ot = out + (size_t) t * (size_t) dim;
        float sum = 0.0f;
        for (int32_t i = 0; i < dim; i++) {
            sum += xt[i];
        }
        float mean = sum / (float) dim;
        float sq = 0.0f; /* two passes: variance of (x - mean), as torch computes it */
        for (int32_t i = 0; i < dim; i++) {
            float d = xt[i] - mean;
            sq += d * d;
        }
        float inv_std = 1.0f / sqrtf(sq / (float) dim + eps);
        for (int32_t i = 0; i < dim; i++) {
            ot[i] = (xt[i] - mean) * inv_std * weight[i];
        }
    }
}

void aya_rope_interleaved_generic(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                                  const float *cos, const float *sin) {
    int32_t half = head_dim / 2;
    for (int32_t t = 0; t < tokens; t++) {
        const float *c = cos + (size_t) (pos0 + t) * (size_t) half;
        const float *s = sin + (size_t) (pos0 + t) * (size_t) half;
        for (int32_t h = 0; h < heads; h++) {
            float *v = vec + ((size_t) t * (size_t) heads + (size_t) h) * (size_t) head_dim;
            for (int32_t i = 0; i < half; i++) {
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c[i] - b * s[i];
                v[2 * i + 1] = a * s[i] + b * c[i];
            }
        }
    }
}

void aya_attention_generic(const float *q, const float *k_cache, const float *v_cache, float *out,
                           int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                           int32_t capacity, int32_t window, float scale, float *scratch,
                           int32_t item_start, int32_t item_end) {
    (void) tokens;
    int32_t group = heads / kv_heads;
    size_t slot_stride = (size_t) kv_heads * (size_t) head_dim; /* floats between consecutive cache slots */
    for (int32_t item = item_start; item < item_end; item++) {
        int32_t t = item / heads, h = item % heads;
        int32_t pos = pos0 + t;
        int32_t lo = aya_first_visible_key(pos, window);
        const float *qv = q + (size_t) item * (size_t) head_dim;
        size_t kv_offset = (size_t) (h / group) * (size_t) head_dim;
        float max = -INFINITY;
        for (int32_t p = lo; p <= pos; p++) {
            const float *k = k_cache + (size_t) (p % capacity) * slot_stride + kv_offset;
            float dot = 0.0f;
            for (int32_t i = 0; i < head_dim; i++) {
                dot += qv[i] * k[i];
            }
            dot *= scale;
            scratch[p - lo] = dot;
            if (dot > max) max = dot;
        }
        double sum = 0.0; /* f64, as softmax: long contexts sum thousands of weights */
        for (int32_t p = lo; p <= pos; p++) {
            float e = expf(scratch[p - lo] - max);
            scratch[p - lo] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        float *o = out + (size_t) item * (size_t) head_dim;
        for (int32_t i = 0; i < head_dim; i++) {
            o[i] = 0.0f;
        }
        for (int32_t p = lo; p <= pos; p++) {
            const float *v = v_cache + (size_t) (p % capacity) * slot_stride + kv_offset;
            float weight = scratch[p - lo] * inv;
            for (int32_t i = 0; i < head_dim; i++) {
                o[i] += weight * v[i];
            }
        }
    }
}

void aya_swiglu_generic(float *gate, const float *up, int64_t start, int64_t end) {
    for (int64_t i = start; i < end; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void aya_softmax_generic(float *x, int32_t n) {
    if (n <= 0) return;
    float max = x[0];
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > max) max = x[i];
    }
    double sum = 0.0; /* a vocabulary-sized sum in f32 would lose ~1e-5 relative */
    for (int32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float) (1.0 / sum);
    for (int32_t i = 0; i < n; i++) {
        x[i] *= inv;
    }
}

const aya_kernel_table aya_table_generic = {
    .isa = "scalar",
    .matmul = { aya_matmul_f32_generic, aya_matmul_f16_generic, aya_matmul_bf16_generic, aya_matmul_q8_0_generic, aya_matmul_q4_0_generic },
    .embed = { aya_embed_f32_generic, aya_embed_f16_generic, aya_embed_bf16_generic, NULL, NULL },
    .layernorm = aya_layernorm_generic,
    .rope_interleaved = aya_rope_interleaved_generic,
    .attention = aya_attention_generic,
    .swiglu = aya_swiglu_generic,
    .softmax = aya_softmax_generic,
};
