/* LayerNorm, RoPE, attention, SwiGLU, softmax: hand-computed values on every path, then every SIMD path against scalar. */
#include "test_util.h"

#define NEAR(a, b, tol) (fabs((double) (a) - (double) (b)) <= (tol))

static void test_hand_computed(const char *isa) {
    /* LayerNorm of [1, 2, 3, 4], weight 1, eps 0: mean 2.5, var 1.25 -> (x - 2.5) / sqrt(1.25) */
    float x[4] = { 1, 2, 3, 4 }, ones[4] = { 1, 1, 1, 1 }, out[4];
    const float ln_want[4] = { -1.34164079f, -0.44721360f, 0.44721360f, 1.34164079f };
    aya_layernorm_f32(x, ones, out, 1, 4, 0.0f);
    for (int i = 0; i < 4; i++) CHECK(NEAR(out[i], ln_want[i], 1e-6), "%s layernorm[%d] = %.9g, want %.9g", isa, i, out[i], ln_want[i]);
    /* in place, with a weight and eps: x = [0, 2] -> mean 1, var 1, eps 3 -> (x - 1) / 2 * [2, 4] = [-1, 2] */
    float y[2] = { 0, 2 }, wy[2] = { 2, 4 };
    aya_layernorm_f32(y, wy, y, 1, 2, 3.0f);
    CHECK(NEAR(y[0], -1.0f, 1e-6) && NEAR(y[1], 2.0f, 1e-6), "%s in-place layernorm = %g %g, want -1 2", isa, y[0], y[1]);

    /* RoPE by 90 degrees at position 1 (table row 1), head_dim 4: (1, 0) -> (0, 1), (0, 1) -> (-1, 0) */
    float v[4] = { 1, 0, 0, 1 };
    float cos[4] = { 1, 1, 0, 0 }, sin[4] = { 0, 0, 1, 1 }; /* rows: position 0, position 1 */
    aya_rope_interleaved_f32(v, 1, 1, 4, 1, cos, sin);
    CHECK(v[0] == 0 && v[1] == 1 && v[2] == -1 && v[3] == 0, "%s rope = %g %g %g %g, want 0 1 -1 0", isa, v[0], v[1], v[2], v[3]);

    /* softmax of [0, ln 3] = [0.25, 0.75] */
    float s[2] = { 0.0f, logf(3.0f) };
    aya_softmax_f32(s, 2);
    CHECK(NEAR(s[0], 0.25f, 1e-6) && NEAR(s[1], 0.75f, 1e-6), "%s softmax = %g %g", isa, s[0], s[1]);

    /* SwiGLU: silu(0) * 5 = 0, silu(1) * 2 = 2 / (1 + e^-1), silu(-1) * 1 = -1 / (1 + e) */
    float g[3] = { 0, 1, -1 }, u[3] = { 5, 2, 1 };
    aya_swiglu_f32(g, u, 0, 3);
    CHECK(g[0] == 0 && NEAR(g[1], 1.46211716f, 1e-6) && NEAR(g[2], -0.26894142f, 1e-6), "%s swiglu = %g %g %g", isa, g[0], g[1], g[2]);

    /* attention, 1 head, head_dim 2, keys k0 = [1, 0], k1 = [0, 1], values v0 = [1, 2], v1 = [3, 4], q = [ln 3, 0]:
     * scores [ln 3, 0] -> weights [0.75, 0.25] -> out [1.5, 2.5] */
    float k[4] = { 1, 0, 0, 1 }, vals[4] = { 1, 2, 3, 4 }, q[2] = { logf(3.0f), 0 }, o[2], scratch[4];
    aya_attention_f32(q, k, vals, o, 1, 1, 1, 1, 2, 2, 0, 1.0f, scratch, 0, 1);
    CHECK(NEAR(o[0], 1.5f, 1e-6) && NEAR(o[1], 2.5f, 1e-6), "%s attention = %g %g, want 1.5 2.5", isa, o[0], o[1]);
    /* window 1: the query sees only itself (position 1 -> v1) */
    aya_attention_f32(q, k, vals, o, 1, 1, 1, 1, 2, 2, 1, 1.0f, scratch, 0, 1);
    CHECK(NEAR(o[0], 3.0f, 1e-6) && NEAR(o[1], 4.0f, 1e-6), "%s windowed attention = %g %g, want 3 4", isa, o[0], o[1]);
    /* ring buffer: capacity 2, query at position 2 with window 2 sees positions 1 (slot 1) and 2 (slot 0):
     * scores [q.k1, q.k0] = [0, ln 3] -> out = 0.25 v1 + 0.75 v0 = [1.5, 2.5] */
    aya_attention_f32(q, k, vals, o, 1, 2, 1, 1, 2, 2, 2, 1.0f, scratch, 0, 1);
    CHECK(NEAR(o[0], 1.5f, 1e-6) && NEAR(o[1], 2.5f, 1e-6), "%s ring attention = %g %g, want 1.5 2.5", isa, o[0], o[1]);
    /* a scale of 0 averages what is visible: position 0 sees only v0 */
    aya_attention_f32(q, k, vals, o, 1, 0, 1, 1, 2, 2, 0, 0.0f, scratch, 0, 1);
    CHECK(NEAR(o[0], 1.0f, 1e-6) && NEAR(o[1], 2.0f, 1e-6), "%s first-position attention = %g %g, want 1 2", isa, o[0], o[1]);
}

/* |got - want| <= tol * max(|want|, floor): floor 1 for values that may cancel, tiny for exp-based ones (relative). */
static int compare(const char *isa, const char *what, const float *got, const float *want, size_t n, double tol,
                   double floor) {
    for (size_t i = 0; i < n; i++) {
        double scale = fabs((double) want[i]) > floor ? fabs((double) want[i]) : floor;
        if (!(fabs((double) got[i] - (double) want[i]) <= tol * scale)) {
            CHECK(0, "%s %s[%zu] = %.9g, scalar %.9g", isa, what, i, got[i], want[i]);
            return 0;
        }
    }
    return 1;
}

static void test_against_scalar(const char *isa) {
    /* LayerNorm over odd and model widths, several tokens, an offset mean (as in a residual stream) */
    static const int ln_dims[] = { 1, 7, 8, 33, 2048 };
    for (size_t d = 0; d < sizeof ln_dims / sizeof ln_dims[0]; d++) {
        int dim = ln_dims[d], tokens = 3;
        float *x = random_floats((size_t) tokens * dim, 3.0f, 9.0f), *w = random_floats((size_t) dim, -2, 2);
        float *want = malloc(sizeof(float) * tokens * dim), *got = malloc(sizeof(float) * tokens * dim);
        use_isa("scalar");
        aya_layernorm_f32(x, w, want, tokens, dim, 1e-5f);
        use_isa(isa);
        aya_layernorm_f32(x, w, got, tokens, dim, 1e-5f);
        compare(isa, "layernorm", got, want, (size_t) tokens * dim, 2e-5, 1.0);
        free(x); free(w); free(want); free(got);
    }

    /* RoPE: 3 tokens, 5 heads, head_dim 6, from position 4 */
    {
        int tokens = 3, heads = 5, hd = 6, pos0 = 4, positions = 8;
        float *v = random_floats((size_t) tokens * heads * hd, -1, 1), *c = malloc(sizeof(float) * positions * hd / 2),
              *s = malloc(sizeof(float) * positions * hd / 2);
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < hd / 2; i++) {
                double angle = p * pow(50000.0, -2.0 * i / hd);
                c[p * hd / 2 + i] = (float) cos(angle);
                s[p * hd / 2 + i] = (float) sin(angle);
            }
        size_t n = (size_t) tokens * heads * hd;
        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        memcpy(want, v, sizeof(float) * n);
        memcpy(got, v, sizeof(float) * n);
        use_isa("scalar");
        aya_rope_interleaved_f32(want, tokens, heads, hd, pos0, c, s);
        use_isa(isa);
        aya_rope_interleaved_f32(got, tokens, heads, hd, pos0, c, s);
        compare(isa, "rope", got, want, n, 1e-6, 1.0);
        /* rotation keeps each pair's length */
        for (size_t i = 0; i < n; i += 2) {
            double before = hypot(v[i], v[i + 1]), after = hypot(got[i], got[i + 1]);
            CHECK(NEAR(before, after, 1e-5), "%s rope changed a pair's length %g -> %g", isa, before, after);
        }
        free(v); free(c); free(s); free(want); free(got);
    }

    /* attention: GQA 6 query heads over 2 KV heads (groups of 3) or 16 over 4 (groups of 4, Tiny Aya), odd head_dim,
     * ring buffer, windowed and global, several blocks of keys with odd counts, items in slices */
    static const int cases[][6] = { /* tokens, pos0, capacity, window, head_dim, heads per KV head */
        { 1, 0, 8, 0, 16, 3 }, { 1, 11, 16, 0, 19, 3 }, { 4, 5, 16, 0, 128, 3 }, { 3, 20, 6, 5, 24, 3 },
        { 5, 30, 7, 7, 9, 3 }, { 2, 40, 64, 0, 33, 3 }, { 1, 100, 128, 0, 128, 4 }, { 2, 150, 70, 67, 128, 4 },
        { 3, 64, 80, 0, 20, 4 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int tokens = cases[c][0], pos0 = cases[c][1], capacity = cases[c][2], window = cases[c][3], hd = cases[c][4];
        int kv_heads = cases[c][5] == 4 ? 4 : 2, heads = kv_heads * cases[c][5], items = tokens * heads;
        float *q = random_floats((size_t) items * hd, -1, 1);
        float *k = random_floats((size_t) capacity * kv_heads * hd, -1, 1);
        float *v = random_floats((size_t) capacity * kv_heads * hd, -1, 1);
        float *want = malloc(sizeof(float) * items * hd), *got = malloc(sizeof(float) * items * hd);
        float *scratch = malloc(sizeof(float) * capacity);
        float scale = 1.0f / sqrtf((float) hd) * 3.0f; /* sharper than usual, to exercise the max subtraction */
        use_isa("scalar");
        aya_attention_f32(q, k, v, want, tokens, pos0, heads, kv_heads, hd, capacity, window, scale, scratch, 0, items);
        use_isa(isa);
        int cut1 = items / 3, cut2 = items - 1;
        aya_attention_f32(q, k, v, got, tokens, pos0, heads, kv_heads, hd, capacity, window, scale, scratch, 0, cut1);
        aya_attention_f32(q, k, v, got, tokens, pos0, heads, kv_heads, hd, capacity, window, scale, scratch, cut1, cut2);
        aya_attention_f32(q, k, v, got, tokens, pos0, heads, kv_heads, hd, capacity, window, scale, scratch, cut2, items);
        compare(isa, "attention", got, want, (size_t) items * hd, 2e-6, 1.0);
        free(q); free(k); free(v); free(want); free(got); free(scratch);
    }

    /* SwiGLU and softmax over lengths with tails, including large magnitudes */
    static const int lens[] = { 1, 7, 8, 9, 100, 11008 };
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        int n = lens[l];
        float *g = random_floats((size_t) n, -30, 30), *u = random_floats((size_t) n, -3, 3);
        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        memcpy(want, g, sizeof(float) * n);
        memcpy(got, g, sizeof(float) * n);
        use_isa("scalar");
        aya_swiglu_f32(want, u, 1, n);
        use_isa(isa);
        aya_swiglu_f32(got, u, 1, n);
        CHECK(got[0] == g[0], "%s swiglu touched an element before start", isa);
        compare(isa, "swiglu", got, want, (size_t) n, 1e-6, 1e-37);
        memcpy(want, g, sizeof(float) * n);
        memcpy(got, g, sizeof(float) * n);
        use_isa("scalar");
        aya_softmax_f32(want, n);
        use_isa(isa);
        aya_softmax_f32(got, n);
        compare(isa, "softmax", got, want, (size_t) n, 2e-6, 1e-37);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += got[i];
        CHECK(NEAR(sum, 1.0, 1e-5), "%s softmax sums to %.9g", isa, sum);
        free(g); free(u); free(want); free(got);
    }
}

/* Same value or both NaN, up to a relative tolerance; infinities must match exactly. */
static int same_special(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs((double) a - (double) b) <= 1e-6 * fabs((double) b) + 1e-44;
}

/* NaN, infinities and huge arguments behave as in the scalar code (which uses expf). */
static void test_special_values(const char *isa) {
    const float special[] = { NAN, INFINITY, -INFINITY, 100.0f, -100.0f, 88.5f, -88.5f, 88.7f, -88.7f, 88.0f, -88.0f,
                              89.0f, -87.0f, 0.0f, -0.0f, 1e-30f, 3.0f, -3.0f, 50.0f, -50.0f, -87.5f, 87.5f };
    enum { N = sizeof special / sizeof special[0] };
    float up[N], want[N], got[N];
    for (int i = 0; i < N; i++) up[i] = 1.5f;
    memcpy(want, special, sizeof special);
    memcpy(got, special, sizeof special);
    use_isa("scalar");
    aya_swiglu_f32(want, up, 0, N);
    use_isa(isa);
    aya_swiglu_f32(got, up, 0, N);
    for (int i = 0; i < N; i++) {
        CHECK(same_special(got[i], want[i]), "%s swiglu(%g) = %g, scalar %g", isa, special[i], got[i], want[i]);
    }
    /* softmax: one NaN poisons everything; an infinite logit is NaN in f32 arithmetic too (inf - inf) */
    for (int poison = 0; poison < 2; poison++) {
        float x[11], y[11];
        for (int i = 0; i < 11; i++) x[i] = y[i] = (float) i - 5.0f;
        x[7] = y[7] = poison ? INFINITY : NAN;
        use_isa("scalar");
        aya_softmax_f32(x, 11);
        use_isa(isa);
        aya_softmax_f32(y, 11);
        for (int i = 0; i < 11; i++) CHECK(same_special(y[i], x[i]), "%s softmax with %s [%d] = %g, scalar %g", isa, poison ? "inf" : "NaN", i, y[i], x[i]);
    }
}

/* The read probe reads every word once (full groups of four rows, the tail, the words past the prefetch distance). */
static void test_read_probe(void) {
    static const int64_t sizes[] = { 8, 64, 4096, 16 * 1024, 64 * 1024, 64 * 1024 + 64, 300 * 1024 + 8 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t words = sizes[k] / 8;
        uint64_t *buf = malloc((size_t) sizes[k]);
        for (int64_t i = 0; i < words; i++) buf[i] = (uint64_t) i * 0x9e3779b97f4a7c15ull;
        uint64_t want = 0;
        for (int64_t i = 0; i < words; i++) want += buf[i];
        CHECK(aya_read_probe(buf, sizes[k]) == want, "read probe over %lld bytes", (long long) sizes[k]);
        free(buf);
    }
}

int main(void) {
    if (!use_isa("scalar")) return 1;
    test_read_probe();
    test_hand_computed("scalar");
    for (int i = 0; i < SIMD_ISA_COUNT; i++) {
        if (!aya_isa_available(simd_isas[i])) {
            printf("%s: not available here, skipped\n", simd_isas[i]);
            continue;
        }
        if (!use_isa(simd_isas[i])) continue;
        test_hand_computed(simd_isas[i]);
        test_against_scalar(simd_isas[i]);
        test_special_values(simd_isas[i]);
        printf("%s: compared with scalar\n", simd_isas[i]);
    }
    return finish("test_ops");
}
