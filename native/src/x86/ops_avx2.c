/* AVX2 + FMA LayerNorm, attention, SwiGLU and softmax (f32 throughout, vector exp within ~2 ulp of expf). */
#include <math.h>

#include "kernels_internal.h"
#include "simd_avx2.h"

void aya_layernorm_avx2(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps) {
    for (int32_t t = 0; t < tokens; t++) {
        const float *xt = x + (size_t) t * (size_t) dim;
        float *ot = out + (size_t) t * (size_t) dim;
        __m256 acc = _mm256_setzero_ps();
        int32_t i = 0;
        for (; i + 8 <= dim; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(xt + i));
        float sum = aya_hsum256(acc);
        for (; i < dim; i++) sum += xt[i];
        float mean = sum / (float) dim;
        __m256 m = _mm256_set1_ps(mean);
        acc = _mm256_setzero_ps();
        for (i = 0; i + 8 <= dim; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xt + i), m);
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        float sq = aya_hsum256(acc);
        for (; i < dim; i++) sq += (xt[i] - mean) * (xt[i] - mean);
        float inv_std = 1.0f / sqrtf(sq / (float) dim + eps);
        __m256 s = _mm256_set1_ps(inv_std);
        for (i = 0; i + 8 <= dim; i += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xt + i), m);
            _mm256_storeu_ps(ot + i, _mm256_mul_ps(_mm256_mul_ps(d, s), _mm256_loadu_ps(weight + i)));
        }
        for (; i < dim; i++) ot[i] = (xt[i] - mean) * inv_std * weight[i];
    }
}

static inline float dot(const float *a, const float *b, int32_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = aya_hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* x[0, n) = e^(x - max), returns the sum (accumulated in f64: softmax runs over the 262144-entry vocabulary). */
static double exp_sum(float *x, int32_t n, float max) {
    __m256 m = _mm256_set1_ps(max);
    __m256d acc_lo = _mm256_setzero_pd(), acc_hi = _mm256_setzero_pd();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = aya_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m256d acc = _mm256_add_pd(acc_lo, acc_hi);
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    return sum;
}

static float max_of(const float *x, int32_t n) {
    float max = -INFINITY;
    int32_t i = 0;
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        max = aya_hmax256(m);
    }
    for (; i < n; i++) if (x[i] > max) max = x[i];
    return max;
}

enum { KEY_BLOCK = 64, MAX_GROUP = 8 };

/* o[i] = o[i] * c + sum_j p[j] * v_j[i] is done in two steps below; this one is o *= c. */
static inline void scale_row(float *o, float c, int32_t n) {
    __m256 cv = _mm256_set1_ps(c);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), cv));
    for (; i < n; i++) o[i] *= c;
}

/* The g query heads q[0..g) (consecutive rows) that share one KV head attend over keys [lo, pos].
 * One pass over the cache in blocks of keys with a running max and sum (online softmax): each key and value row is
 * read once for the whole group instead of once per head, which is what decode attention is bound by. */
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
            if (new_max > max[h] && sum[h] > 0.0) {  /* earlier weights were relative to a smaller max */
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
                __m256 wv = _mm256_set1_ps(scores[h][j]);
                int32_t i = 0;
                for (; i + 8 <= head_dim; i += 8) {
                    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(o + i)));
                }
                for (; i < head_dim; i++) o[i] += scores[h][j] * v[i];
            }
        }
    }
    for (int32_t h = 0; h < g; h++) scale_row(out + (size_t) h * head_dim, (float) (1.0 / sum[h]), head_dim);
}

void aya_attention_avx2(const float *q, const float *k_cache, const float *v_cache, float *out,
                        int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                        int32_t capacity, int32_t window, float scale, float *scratch,
                        int32_t item_start, int32_t item_end) {
    (void) tokens;
    (void) scratch; /* the online softmax keeps its scores on the stack */
    int32_t group = heads / kv_heads;
    size_t slot_stride = (size_t) kv_heads * (size_t) head_dim;
    for (int32_t item = item_start; item < item_end;) {
        int32_t t = item / heads, h = item % heads;
        int32_t kv = h / group;
        /* the heads of this item's KV group that are in [item, item_end), at most MAX_GROUP */
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

void aya_swiglu_avx2(float *gate, const float *up, int64_t start, int64_t end) {
    int64_t i = start;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= end; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, aya_exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < end; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void aya_softmax_avx2(float *x, int32_t n) {
    if (n <= 0) return;
    float inv = (float) (1.0 / exp_sum(x, n, max_of(x, n)));
    __m256 s = _mm256_set1_ps(inv);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
    for (; i < n; i++) x[i] *= inv;
}
