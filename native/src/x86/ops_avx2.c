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

/* Keys per block of the online softmax: a block's value rows (32 x head_dim f32 = 16 KiB at 128) stay in L1 while
 * they are summed. A group call serves up to 4 query heads (Tiny Aya's GQA group): their accumulators fit in registers. */
enum { KEY_BLOCK = 32, MAX_GROUP = 4 };

/* scores[h][j] = (q_h . k_j) * scale for the G heads (G a constant) and the nb keys of a block: two keys at a time, each
 * key row loaded once for all heads, one accumulator per head and key (2G independent FMA chains). */
static inline __attribute__((always_inline)) void group_scores(const float *q, const float *const *keys, int32_t nb,
                                                               int32_t head_dim, float scale,
                                                               float scores[MAX_GROUP][KEY_BLOCK],
                                                               const float *const *next_keys,
                                                               const float *const *next_values, int32_t next_nb,
                                                               const int G) {
    int32_t j = 0;
    for (; j + 2 <= nb; j += 2) {
        const float *k0 = keys[j], *k1 = keys[j + 1];
        /* the next block's rows j and j + 1 (K and V), a cache line per 16 dims, spread over this pair's loop */
        const char *pf[4] = { NULL, NULL, NULL, NULL };
        if (j + 1 < next_nb) {
            pf[0] = (const char *) next_keys[j];
            pf[1] = (const char *) next_keys[j + 1];
            pf[2] = (const char *) next_values[j];
            pf[3] = (const char *) next_values[j + 1];
        }
        __m256 acc0[MAX_GROUP], acc1[MAX_GROUP];
        for (int h = 0; h < G; h++) acc0[h] = acc1[h] = _mm256_setzero_ps();
        int32_t i = 0;
        for (; i + 8 <= head_dim; i += 8) {
            if (pf[0] != NULL && (i & 15) == 0) {
                for (int r = 0; r < 4; r++) _mm_prefetch(pf[r] + (size_t) i * sizeof(float), _MM_HINT_T0);
            }
            __m256 kv0 = _mm256_loadu_ps(k0 + i), kv1 = _mm256_loadu_ps(k1 + i);
            for (int h = 0; h < G; h++) {
                __m256 qv = _mm256_loadu_ps(q + (size_t) h * head_dim + i);
                acc0[h] = _mm256_fmadd_ps(qv, kv0, acc0[h]);
                acc1[h] = _mm256_fmadd_ps(qv, kv1, acc1[h]);
            }
        }
        for (int h = 0; h < G; h++) {
            float s0 = aya_hsum256(acc0[h]), s1 = aya_hsum256(acc1[h]);
            for (int32_t ii = i; ii < head_dim; ii++) {
                s0 += q[(size_t) h * head_dim + ii] * k0[ii];
                s1 += q[(size_t) h * head_dim + ii] * k1[ii];
            }
            scores[h][j] = s0 * scale;
            scores[h][j + 1] = s1 * scale;
        }
    }
    for (; j < nb; j++) {
        const float *k = keys[j];
        __m256 acc[MAX_GROUP];
        for (int h = 0; h < G; h++) acc[h] = _mm256_setzero_ps();
        int32_t i = 0;
        for (; i + 8 <= head_dim; i += 8) {
            __m256 kv = _mm256_loadu_ps(k + i);
            for (int h = 0; h < G; h++) acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t) h * head_dim + i), kv, acc[h]);
        }
        for (int h = 0; h < G; h++) {
            float sum = aya_hsum256(acc[h]);
            for (int32_t ii = i; ii < head_dim; ii++) sum += q[(size_t) h * head_dim + ii] * k[ii];
            scores[h][j] = sum * scale;
        }
    }
}

/* out_h += sum_j p[h][j] * v_j for the G heads and nb value rows of a block: 16 dimensions at a time, the G x 2
 * accumulators stay in registers over all the block's rows (no store-to-load chain through out). */
static inline __attribute__((always_inline)) void group_values(float *out, const float *const *values, int32_t nb,
                                                               int32_t head_dim, float p[MAX_GROUP][KEY_BLOCK],
                                                               const int G) {
    int32_t i = 0;
    for (; i + 16 <= head_dim; i += 16) {
        __m256 acc0[MAX_GROUP], acc1[MAX_GROUP];
        for (int h = 0; h < G; h++) {
            acc0[h] = _mm256_loadu_ps(out + (size_t) h * head_dim + i);
            acc1[h] = _mm256_loadu_ps(out + (size_t) h * head_dim + i + 8);
        }
        for (int32_t j = 0; j < nb; j++) {
            __m256 v0 = _mm256_loadu_ps(values[j] + i), v1 = _mm256_loadu_ps(values[j] + i + 8);
            for (int h = 0; h < G; h++) {
                __m256 w = _mm256_broadcast_ss(&p[h][j]);
                acc0[h] = _mm256_fmadd_ps(w, v0, acc0[h]);
                acc1[h] = _mm256_fmadd_ps(w, v1, acc1[h]);
            }
        }
        for (int h = 0; h < G; h++) {
            _mm256_storeu_ps(out + (size_t) h * head_dim + i, acc0[h]);
            _mm256_storeu_ps(out + (size_t) h * head_dim + i + 8, acc1[h]);
        }
    }
    for (; i < head_dim; i++) {
        for (int h = 0; h < G; h++) {
            float o = out[(size_t) h * head_dim + i];
            for (int32_t j = 0; j < nb; j++) o += p[h][j] * values[j][i];
            out[(size_t) h * head_dim + i] = o;
        }
    }
}

/* o *= c */
static inline void scale_row(float *o, float c, int32_t n) {
    __m256 cv = _mm256_set1_ps(c);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), cv));
    for (; i < n; i++) o[i] *= c;
}

/* The G query heads q[0..G) (consecutive rows, G <= MAX_GROUP a constant) that share one KV head attend over keys
 * [lo, pos]. One pass over the cache in blocks of keys with a running max and sum (online softmax): each key and value
 * row is read once for the whole group instead of once per head, which is what decode attention is bound by. */
static inline __attribute__((always_inline)) void attend_group(const float *q, const float *k_cache,
                                                               const float *v_cache, float *out, int32_t lo,
                                                               int32_t pos, int32_t capacity, size_t slot_stride,
                                                               size_t kv_offset, int32_t head_dim, float scale,
                                                               const int G) {
    float scores[MAX_GROUP][KEY_BLOCK];
    const float *rows[2][2][KEY_BLOCK];  /* [this block, next block][keys, values][j]: the next is prefetched */
    float max[MAX_GROUP];
    double sum[MAX_GROUP];
    for (int h = 0; h < G; h++) {
        max[h] = -INFINITY;
        sum[h] = 0.0;
        memset(out + (size_t) h * head_dim, 0, (size_t) head_dim * sizeof(float));
    }
    int32_t slot = lo % capacity;  /* the ring's slot of the next key to list, advanced without a division per key */
    int cur = 0;
    for (int32_t j = 0; j < KEY_BLOCK && lo + j <= pos; j++) {
        rows[cur][0][j] = k_cache + (size_t) slot * slot_stride + kv_offset;
        rows[cur][1][j] = v_cache + (size_t) slot * slot_stride + kv_offset;
        if (++slot == capacity) slot = 0;
    }
    for (int32_t b0 = lo; b0 <= pos; b0 += KEY_BLOCK, cur ^= 1) {
        int32_t nb = pos - b0 + 1 < KEY_BLOCK ? pos - b0 + 1 : KEY_BLOCK;
        /* List the next block's rows; they are prefetched while this block's scores are computed: one head's row is
         * a short piece of each cache slot ([C, KV, hd] layout), a stride the hardware prefetchers follow poorly. */
        int32_t next_nb = pos - (b0 + nb) + 1 < KEY_BLOCK ? pos - (b0 + nb) + 1 : KEY_BLOCK;
        for (int32_t j = 0; j < next_nb; j++) {
            rows[cur ^ 1][0][j] = k_cache + (size_t) slot * slot_stride + kv_offset;
            rows[cur ^ 1][1][j] = v_cache + (size_t) slot * slot_stride + kv_offset;
            if (++slot == capacity) slot = 0;
        }
        const float *const *keys = rows[cur][0], *const *values = rows[cur][1];
        group_scores(q, keys, nb, head_dim, scale, scores, rows[cur ^ 1][0], rows[cur ^ 1][1], next_nb, G);
        for (int h = 0; h < G; h++) {
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
        group_values(out, values, nb, head_dim, scores, G);
    }
    for (int h = 0; h < G; h++) scale_row(out + (size_t) h * head_dim, (float) (1.0 / sum[h]), head_dim);
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
        const float *qi = q + (size_t) item * head_dim;
        float *oi = out + (size_t) item * head_dim;
        int32_t lo = aya_first_visible_key(pos, window);
        size_t kv_offset = (size_t) kv * head_dim;
        switch (h_end - h) {
            case 4: attend_group(qi, k_cache, v_cache, oi, lo, pos, capacity, slot_stride, kv_offset, head_dim, scale, 4); break;
            case 3: attend_group(qi, k_cache, v_cache, oi, lo, pos, capacity, slot_stride, kv_offset, head_dim, scale, 3); break;
            case 2: attend_group(qi, k_cache, v_cache, oi, lo, pos, capacity, slot_stride, kv_offset, head_dim, scale, 2); break;
            default: attend_group(qi, k_cache, v_cache, oi, lo, pos, capacity, slot_stride, kv_offset, head_dim, scale, 1); break;
        }
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
