/* NEON LayerNorm, attention, SwiGLU and softmax: the AVX2 designs with 4-wide vectors (f32 throughout, vector exp
 * within ~2 ulp of expf, exponential sums in f64, attention in one online-softmax pass per GQA group). */
#include <arm_neon.h>
#include <math.h>

#include "kernels_internal.h"

/* e^x for 4 floats (Cephes expf: range reduction by ln 2, degree-6 polynomial). Like expf: 0 below -87.3, +inf above
 * 88.72, NaN stays NaN (fmax/fmin propagate it). */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(-87.33654f), hi = vdupq_n_f32(88.72283f);
    uint32x4_t underflow = vcltq_f32(x, lo);
    uint32x4_t overflow = vcgtq_f32(x, hi);
    x = vminq_f32(vmaxq_f32(x, lo), hi);
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f)); /* ln 2 split in two for exactness */
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    /* 2^n by building the exponent; n reaches 128 near the top of the range, where 2^n = 2^127 * 2 */
    float32x4_t n1 = vminq_f32(n, vdupq_n_f32(127.0f));
    int32x4_t scale = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n1), vdupq_n_s32(127)), 23);
    float32x4_t e = vmulq_f32(vmulq_f32(p, vreinterpretq_f32_s32(scale)), vaddq_f32(vdupq_n_f32(1.0f), vsubq_f32(n, n1)));
    e = vbslq_f32(underflow, vdupq_n_f32(0.0f), e);
    return vbslq_f32(overflow, vdupq_n_f32(INFINITY), e);
}

void aya_layernorm_neon(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps) {
    for (int32_t t = 0; t < tokens; t++) {
        const float *xt = x + (size_t) t * (size_t) dim;
        float *ot = out + (size_t) t * (size_t) dim;
        float32x4_t acc = vdupq_n_f32(0.0f);
        int32_t i = 0;
        for (; i + 4 <= dim; i += 4) acc = vaddq_f32(acc, vld1q_f32(xt + i));
        float sum = vaddvq_f32(acc);
        for (; i < dim; i++) sum += xt[i];
        float mean = sum / (float) dim;
        float32x4_t m = vdupq_n_f32(mean);
        acc = vdupq_n_f32(0.0f);
        for (i = 0; i + 4 <= dim; i += 4) {
            float32x4_t d = vsubq_f32(vld1q_f32(xt + i), m);
            acc = vfmaq_f32(acc, d, d);
        }
        float sq = vaddvq_f32(acc);
        for (; i < dim; i++) sq += (xt[i] - mean) * (xt[i] - mean);
        float inv_std = 1.0f / sqrtf(sq / (float) dim + eps);
        float32x4_t s = vdupq_n_f32(inv_std);
        for (i = 0; i + 4 <= dim; i += 4) {
            float32x4_t d = vsubq_f32(vld1q_f32(xt + i), m);
            vst1q_f32(ot + i, vmulq_f32(vmulq_f32(d, s), vld1q_f32(weight + i)));
        }
        for (; i < dim; i++) ot[i] = (xt[i] - mean) * inv_std * weight[i];
    }
}

static inline float dot(const float *a, const float *b, int32_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* x[0, n) = e^(x - max), returns the sum (accumulated in f64: softmax runs over the 262144-entry vocabulary). */
static double exp_sum(float *x, int32_t n, float max) {
    float32x4_t m = vdupq_n_f32(max);
    float64x2_t acc_lo = vdupq_n_f64(0.0), acc_hi = vdupq_n_f64(0.0);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), m));
        vst1q_f32(x + i, e);
        acc_lo = vaddq_f64(acc_lo, vcvt_f64_f32(vget_low_f32(e)));
        acc_hi = vaddq_f64(acc_hi, vcvt_high_f64_f32(e));
    }
    double sum = vaddvq_f64(vaddq_f64(acc_lo, acc_hi));
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    return sum;
}

static float max_of(const float *x, int32_t n) {
    float max = -INFINITY;
    int32_t i = 0;
    if (n >= 4) {
        float32x4_t m = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
        max = vmaxvq_f32(m);
    }
    for (; i < n; i++) if (x[i] > max) max = x[i];
    return max;
}

static inline void scale_row(float *o, float c, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(o + i, vmulq_n_f32(vld1q_f32(o + i), c));
    for (; i < n; i++) o[i] *= c;
}

enum { KEY_BLOCK = 64, MAX_GROUP = 8 };

/* The g query heads q[0..g) that share one KV head attend over keys [lo, pos] in one pass (see ops_avx2.c). */
static void attend_group(const float *q, const float *k_cache, const float *v_cache, float *out, int32_t g,
                         int32_t lo, int32_t pos, int32_t capacity, size_t slot_stride, size_t kv_offset,
                         int32_t head_dim, float scale) {
    float scores[MAX_GROUP][KEY_BLOCK];
    float max[MAX_GROUP];
    double sum[MAX_GROUP];
    for (int32_t h = 0; h < g; h++) {
        max[h] = -INFINITY;
        sum[h] = 0.0;
        memset(out + (size_t) h * head_dim, 0, (size_t) head_dim * sizeof(float));
    }
    for (int32_t b0 = lo; b0 <= pos; b0 += KEY_BLOCK) {
        int32_t nb = pos - b0 + 1 < KEY_BLOCK ? pos - b0 + 1 : KEY_BLOCK;
        for (int32_t j = 0; j < nb; j++) {
            const float *k = k_cache + (size_t) ((b0 + j) % capacity) * slot_stride + kv_offset;
            for (int32_t h = 0; h < g; h++) scores[h][j] = dot(q + (size_t) h * head_dim, k, head_dim) * scale;
        }
        for (int32_t h = 0; h < g; h++) {
            float block_max = max_of(scores[h], nb);
            float new_max = block_max > max[h] ? block_max : max[h];
            if (new_max > max[h] && sum[h] > 0.0) {
                float c = expf(max[h] - new_max);
                scale_row(out + (size_t) h * head_dim, c, head_dim);
                sum[h] *= c;
            }
            max[h] = new_max;
            sum[h] += exp_sum(scores[h], nb, new_max);
        }
        for (int32_t j = 0; j < nb; j++) {
            const float *v = v_cache + (size_t) ((b0 + j) % capacity) * slot_stride + kv_offset;
            for (int32_t h = 0; h < g; h++) {
                float *o = out + (size_t) h * head_dim;
                float w = scores[h][j];
                int32_t i = 0;
                for (; i + 4 <= head_dim; i += 4) vst1q_f32(o + i, vfmaq_n_f32(vld1q_f32(o + i), vld1q_f32(v + i), w));
                for (; i < head_dim; i++) o[i] += w * v[i];
            }
        }
    }
    for (int32_t h = 0; h < g; h++) scale_row(out + (size_t) h * head_dim, (float) (1.0 / sum[h]), head_dim);
}

void aya_attention_neon(const float *q, const float *k_cache, const float *v_cache, float *out,
                        int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                        int32_t capacity, int32_t window, float scale, float *scratch,
                        int32_t item_start, int32_t item_end) {
    (void) tokens;
    (void) scratch;
    int32_t group = heads / kv_heads;
    size_t slot_stride = (size_t) kv_heads * (size_t) head_dim;
    for (int32_t item = item_start; item < item_end;) {
        int32_t t = item / heads, h = item % heads;
        int32_t kv = h / group;
        int32_t h_end = (kv + 1) * group;
        if (h_end - h > MAX_GROUP) h_end = h + MAX_GROUP;
        if (t * heads + h_end > item_end) h_end = item_end - t * heads;
        int32_t pos = pos0 + t;
        attend_group(q + (size_t) item * head_dim, k_cache, v_cache, out + (size_t) item * head_dim, h_end - h,
                     aya_first_visible_key(pos, window), pos, capacity, slot_stride, (size_t) kv * head_dim,
                     head_dim, scale);
        item += h_end - h;
    }
}

void aya_swiglu_neon(float *gate, const float *up, int64_t start, int64_t end) {
    int64_t i = start;
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (; i + 4 <= end; i += 4) {
        float32x4_t g = vld1q_f32(gate + i);
        float32x4_t silu = vdivq_f32(g, vaddq_f32(one, exp4(vnegq_f32(g))));
        vst1q_f32(gate + i, vmulq_f32(silu, vld1q_f32(up + i)));
    }
    for (; i < end; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void aya_softmax_neon(float *x, int32_t n) {
    if (n <= 0) return;
    float inv = (float) (1.0 / exp_sum(x, n, max_of(x, n)));
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++) x[i] *= inv;
}
