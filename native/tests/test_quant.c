/* Q8_0 / Q4_0 matrix products: hand-computed blocks, and every SIMD ISA against the scalar code on random matrices
 * (odd row counts, several tokens, row slices). Activations are quantized per token to Q8_0 in every ISA alike. */
#include "test_util.h"

enum { QK = 32 };

/* One Q8_0 row of `blocks` blocks, all weights equal to q with scale d (an exact f16 value). */
static void fill_q8(uint8_t *row, int blocks, uint16_t d_bits, int8_t q) {
    for (int b = 0; b < blocks; b++) {
        row[b * 34] = (uint8_t) (d_bits & 0xff);
        row[b * 34 + 1] = (uint8_t) (d_bits >> 8);
        memset(row + b * 34 + 2, (uint8_t) q, 32);
    }
}

static void hand_computed(void) {
    /* x = 1..32: max 32, so d_x = 32/127 and x quantizes to round(x * 127 / 32); the result is
     * d_w * w * d_x * sum(q_x), where sum(q_x) is computed here independently of the library. */
    float x[QK];
    double sum_q = 0;
    for (int j = 0; j < QK; j++) {
        x[j] = (float) (j + 1);
        sum_q += roundf(x[j] * (127.0f / 32.0f)); /* id = 1/d = 127/32 exactly representable path */
    }
    double d_x = 32.0 / 127.0; /* rounded through f16 by the library: allow 2^-11 relative */
    uint8_t q8[34];
    fill_q8(q8, 1, 0x3800 /* 0.5 */, 3);
    float out = 0;
    aya_matmul_q8_0_f32(q8, x, &out, 1, QK, 1, 0, 1);
    double want = 0.5 * 3 * d_x * sum_q;
    CHECK(fabs(out - want) <= 1e-3 * fabs(want), "q8_0 block: got %g want %g", out, want);

    /* Q4_0: d = 1, every nibble 9 (weight +1) -> d_x * sum(q_x); low nibbles 0 (weight -8) for elements 0..15 */
    uint8_t q4[18] = { 0x00, 0x3c }; /* f16 1.0 */
    memset(q4 + 2, 0x99, 16);
    aya_matmul_q4_0_f32(q4, x, &out, 1, QK, 1, 0, 1);
    want = d_x * sum_q;
    CHECK(fabs(out - want) <= 1e-3 * fabs(want), "q4_0 block of +1: got %g want %g", out, want);
    memset(q4 + 2, 0x90, 16); /* element j < 16: -8, element j >= 16: +1 */
    aya_matmul_q4_0_f32(q4, x, &out, 1, QK, 1, 0, 1);
    double lo = 0, hi = 0;
    for (int j = 0; j < 16; j++) lo += roundf(x[j] * (127.0f / 32.0f));
    for (int j = 16; j < 32; j++) hi += roundf(x[j] * (127.0f / 32.0f));
    want = d_x * (-8 * lo + hi);
    CHECK(fabs(out - want) <= 1e-3 * fabs(want), "q4_0 nibble order: got %g want %g", out, want);
}

typedef void (*matmul_q)(const void *, const float *, float *, int32_t, int32_t, int32_t, int32_t, int32_t);

static void simd_matches_scalar(const char *isa, matmul_q fn, int block_bytes, const char *what) {
    const int shapes[][3] = { {1, 32, 7}, {1, 2048, 33}, {3, 96, 17}, {5, 160, 18} };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int tokens = shapes[s][0], in_dim = shapes[s][1], rows = shapes[s][2];
        size_t row_bytes = (size_t) in_dim / QK * block_bytes;
        uint8_t *w = malloc(rows * row_bytes);
        for (size_t i = 0; i < rows * row_bytes; i++) w[i] = (uint8_t) rng_next();
        for (int r = 0; r < rows; r++) /* sane scales: f16 in [2^-8, 2^-7) */
            for (int b = 0; b < in_dim / QK; b++) {
                uint16_t d = (uint16_t) (0x1c00 | (rng_next() & 0x3ff));
                w[r * row_bytes + b * block_bytes] = (uint8_t) d;
                w[r * row_bytes + b * block_bytes + 1] = (uint8_t) (d >> 8);
            }
        float *x = random_floats((size_t) tokens * in_dim, -3, 3);
        int stride = rows + 2;
        float *want = calloc((size_t) tokens * stride, sizeof(float));
        float *got = calloc((size_t) tokens * stride, sizeof(float));
        use_isa("scalar");
        fn(w, x, want, tokens, in_dim, stride, 0, rows);
        use_isa(isa);
        fn(w, x, got, tokens, in_dim, stride, 0, rows / 2);
        fn(w, x, got, tokens, in_dim, stride, rows / 2, rows);
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++) {
                float a = want[t * stride + r], b = got[t * stride + r];
                CHECK(fabsf(a - b) <= 1e-5f * (fabsf(a) + 1) * sqrtf((float) in_dim / QK), "%s %s %dx%dx%d t=%d r=%d: %g vs scalar %g",
                      isa, what, tokens, in_dim, rows, t, r, b, a);
            }
        free(w); free(x); free(want); free(got);
    }
}

int main(void) {
    use_isa("scalar");
    hand_computed();
    for (int i = 0; i < SIMD_ISA_COUNT; i++) {
        if (!aya_isa_available(simd_isas[i]) || !use_isa(simd_isas[i])) continue;
        hand_computed();
        simd_matches_scalar(simd_isas[i], aya_matmul_q8_0_f32, 34, "q8_0");
        simd_matches_scalar(simd_isas[i], aya_matmul_q4_0_f32, 18, "q4_0");
    }
    return finish("test_quant");
}
