/* Q8_0 / Q4_0 matrix products: hand-computed blocks, and every SIMD ISA against the scalar code on random matrices
 * (odd row counts, several tokens, row slices). Activations are quantized per token to Q8_0 in every ISA alike. */
#include "kernels_internal.h"
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
    /* tokens, in_dim, rows: every row-tile remainder (rows % 4) and token-tile remainder (tokens % 3), an odd block
     * count (Q4_0 goes two blocks per step), one block, and a long row; then AVX-512's many-token path (from 16
     * tokens on for Q8_0, 48 for Q4_0, quant_avx512.c: 2-row x 8-token tiles, 8-block steps, 64-row panels,
     * 2048-input chunks): every token remainder mod 8, odd rows, rows past a panel, block counts that end inside a
     * step, inputs past a chunk; AVX2's (from 6 tokens on, quant_avx2.c: 1-row x 4-token tiles, 4-block steps, the
     * same panels and chunks): 5 to 11 tokens, the same kinds of shapes; AVX2's Q4_0 decode (8-block steps, then
     * pairs, then one block; four rows a quarter of the slice apart): 13 blocks, 9 rows */
    const int shapes[][3] = { {1, 32, 7}, {1, 2048, 33}, {3, 96, 17}, {5, 160, 18}, {1, 32, 1}, {1, 96, 2},
                              {1, 11008, 9}, {2, 32, 5}, {4, 64, 6}, {6, 224, 13}, {7, 2048, 11}, {2, 11008, 5},
                              {1, 64, 130}, {8, 96, 70},
                              {15, 64, 3}, {16, 32, 1}, {17, 96, 5}, {18, 288, 2}, {19, 2080, 7}, {20, 256, 131},
                              {21, 11008, 3}, {22, 64, 5}, {23, 96, 3}, {35, 4128, 67}, {128, 2048, 9},
                              {47, 64, 3}, {48, 32, 1}, {49, 96, 5}, {50, 288, 2}, {51, 2080, 7}, {52, 256, 131},
                              {53, 11008, 3}, {54, 64, 5}, {55, 96, 3},
                              {5, 4128, 3}, {6, 32, 1}, {6, 2080, 67}, {7, 96, 130}, {9, 4128, 3}, {10, 64, 2},
                              {11, 2080, 65}, {1, 416, 9} };
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

/* Decode (one token) as the model runs it: weights mmapped at any offset from a cache line (GGUF tensors sit 32 bytes
 * past one, and Q8_0 / Q4_0 rows of 34 / 18-byte blocks start anywhere), a matrix cut into pieces that the pool's
 * threads take in any order, and enough rows that the loop prefetches (it does so from ~64 KiB before a slice's end).
 * Every weight offset 0..63 gives the same bits as offset 0, the pieces give the same bits as one call, and offset 0
 * matches scalar. */
static void decode_offsets_and_pieces(const char *isa, matmul_q fn, int block_bytes, const char *what) {
    const int shapes[][2] = { {2048, 131}, {11008, 23}, {96, 2001} }; /* in_dim, rows: odd row counts, > 64 KiB */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int in_dim = shapes[s][0], rows = shapes[s][1];
        size_t row_bytes = (size_t) in_dim / QK * block_bytes, bytes = rows * row_bytes;
        uint8_t *w = malloc(bytes), *shifted = aligned_alloc(64, (bytes + 127) / 64 * 64); /* size: a multiple of 64 */
        for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t) rng_next();
        for (int r = 0; r < rows; r++) /* sane scales: f16 in [2^-8, 2^-7), either sign */
            for (int b = 0; b < in_dim / QK; b++) {
                uint16_t d = (uint16_t) (0x1c00 | (rng_next() & 0x83ff));
                w[r * row_bytes + b * block_bytes] = (uint8_t) d;
                w[r * row_bytes + b * block_bytes + 1] = (uint8_t) (d >> 8);
            }
        float *x = random_floats(in_dim, -3, 3);
        float *want = calloc(rows, sizeof(float)), *first = calloc(rows, sizeof(float));
        float *got = calloc(rows, sizeof(float));
        use_isa("scalar");
        fn(w, x, want, 1, in_dim, rows, 0, rows);
        use_isa(isa);
        for (int offset = 0; offset < 64; offset++) {
            memcpy(shifted + offset, w, bytes);
            memset(got, 0, rows * sizeof(float));
            fn(shifted + offset, x, got, 1, in_dim, rows, 0, rows);
            if (offset == 0) {
                memcpy(first, got, rows * sizeof(float));
                for (int r = 0; r < rows; r++)
                    CHECK(fabsf(want[r] - got[r]) <= 1e-5f * (fabsf(want[r]) + 1) * sqrtf((float) in_dim / QK),
                          "%s %s decode %dx%d r=%d: %g vs scalar %g", isa, what, in_dim, rows, r, got[r], want[r]);
            } else {
                CHECK(memcmp(first, got, rows * sizeof(float)) == 0, "%s %s decode %dx%d: weights %d bytes past a line "
                      "give other bits than at a line", isa, what, in_dim, rows, offset);
            }
        }
        /* pieces of 1, 2, 3, ... rows (the last one what is left), taken last first */
        int ends[64], pieces = 0;
        for (int end = 0; end < rows; ) {
            end += pieces + 1;
            ends[pieces++] = end < rows ? end : rows;
            if (pieces == 63) ends[pieces - 1] = rows;
            if (ends[pieces - 1] == rows) break;
        }
        memcpy(shifted + 32, w, bytes);
        memset(got, 0, rows * sizeof(float));
        for (int p = pieces - 1; p >= 0; p--) {
            fn(shifted + 32, x, got, 1, in_dim, rows, p == 0 ? 0 : ends[p - 1], ends[p]);
        }
        CHECK(memcmp(first, got, rows * sizeof(float)) == 0, "%s %s decode %dx%d: %d pieces give other bits than one call",
              isa, what, in_dim, rows, pieces);
        free(w); free(shifted); free(x); free(want); free(first); free(got);
    }
}

/* A decode reuses the thread's last quantization of x while x's bytes are the same and nothing has quantized since
 * (quant_loop.h). Against scalar results computed first: x twice (the second call reuses), x changed in place (same
 * pointer, one value), and x unchanged after the scalar kernel quantized other values of the same size into the
 * same buffers (x's bytes match the kept copy: only the buffers' generation tells). */
static void decode_reuses_only_current_quantization(const char *isa, matmul_q fn, int block_bytes, const char *what) {
    enum { ROWS = 5 };
    const int in_dim = 2048;
    size_t row_bytes = (size_t) in_dim / QK * block_bytes;
    uint8_t *w = malloc(ROWS * row_bytes);
    for (size_t i = 0; i < ROWS * row_bytes; i++) w[i] = (uint8_t) rng_next();
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < in_dim / QK; b++) {
            w[r * row_bytes + b * block_bytes] = 0x00;
            w[r * row_bytes + b * block_bytes + 1] = 0x1c;
        }
    float *x = random_floats(in_dim, -3, 3), *changed = malloc(in_dim * sizeof(float));
    float *other = random_floats(in_dim, -3, 3);
    memcpy(changed, x, in_dim * sizeof(float));
    changed[100] = 7.5f; /* the block's scale and every value of it change */
    float want[2][ROWS], got[ROWS], scratch[ROWS];
    use_isa("scalar");
    fn(w, x, want[0], 1, in_dim, ROWS, 0, ROWS);
    fn(w, changed, want[1], 1, in_dim, ROWS, 0, ROWS);
    use_isa(isa);
    for (int step = 0; step < 4; step++) {
        if (step == 2) x[100] = 7.5f;
        if (step == 3) {
            use_isa("scalar");
            fn(w, other, scratch, 1, in_dim, ROWS, 0, ROWS);
            use_isa(isa);
        }
        fn(w, x, got, 1, in_dim, ROWS, 0, ROWS);
        const float *ref = want[step >= 2];
        for (int r = 0; r < ROWS; r++)
            CHECK(fabsf(ref[r] - got[r]) <= 1e-5f * (fabsf(ref[r]) + 1) * sqrtf((float) in_dim / QK),
                  "%s %s decode reuse step %d r=%d: %g vs scalar %g", isa, what, step, r, got[r], ref[r]);
    }
    free(w); free(x); free(changed); free(other);
}

/* A decode's regrouped activations (AVX2 Q4_0) are reused with its quantization only while nothing else wrote their
 * buffer: here the AVX-512 Q4_K prefill packs its Q8_K activations into it between two decodes of the same x (a Q8_K
 * quantization leaves the Q8_0 one, and aya_q8_generation, alone). */
static void decode_regroup_not_reused_after_other_writer(void) {
#if defined(__x86_64__)
    if (!aya_isa_available("avx2") || !aya_isa_available("avx512")) return;
    enum { ROWS = 5, TOKENS = 8 };
    const int in_dim = 2048;
    size_t row_bytes = (size_t) in_dim / QK * 18, k_row_bytes = (size_t) in_dim / 256 * 144;
    uint8_t *w = malloc(ROWS * row_bytes), *wk = malloc(ROWS * k_row_bytes);
    for (size_t i = 0; i < ROWS * row_bytes; i++) w[i] = (uint8_t) rng_next();
    for (size_t i = 0; i < ROWS * k_row_bytes; i++) wk[i] = (uint8_t) rng_next();
    for (size_t b = 0; b < ROWS * row_bytes; b += 18) { w[b] = 0x00; w[b + 1] = 0x1c; }
    for (size_t b = 0; b < ROWS * k_row_bytes; b += 144) { wk[b] = 0x00; wk[b + 1] = 0x1c; wk[b + 2] = 0x00; wk[b + 3] = 0x1c; }
    float *x = random_floats(in_dim, -3, 3), *xs = random_floats((size_t) TOKENS * in_dim, -3, 3);
    float want[ROWS], got[ROWS], *scratch = malloc((size_t) TOKENS * ROWS * sizeof(float));
    use_isa("scalar");
    aya_matmul_q4_0_f32(w, x, want, 1, in_dim, ROWS, 0, ROWS);
    for (int step = 0; step < 2; step++) {
        use_isa("avx2");
        aya_matmul_q4_0_f32(w, x, got, 1, in_dim, ROWS, 0, ROWS);
        for (int r = 0; r < ROWS; r++)
            CHECK(fabsf(want[r] - got[r]) <= 1e-5f * (fabsf(want[r]) + 1) * sqrtf((float) in_dim / QK),
                  "avx2 q4_0 decode after another writer of the regrouped buffer, step %d r=%d: %g vs scalar %g", step,
                  r, got[r], want[r]);
        use_isa("avx512");
        aya_matmul_q4_k_f32(wk, xs, scratch, TOKENS, in_dim, ROWS, 0, ROWS);
    }
    free(w); free(wk); free(x); free(xs); free(scratch);
#endif
}

/* The AVX2 activation quantizer against the scalar one: identical bytes, scales and sums, including halves (x * id
 * landing on .5), zero blocks, single outliers, tiny (fp16-subnormal) and huge scales. */
static void quantizer_is_exact(void) {
#if defined(__x86_64__)
    if (!aya_isa_available("avx2")) return;
    enum { N = 32 * 64 };
    float *x = random_floats(N, -3, 3);
    for (int j = 0; j < 32; j++) x[32 + j] = 0.0f;                           /* block 1: all zero */
    for (int j = 0; j < 32; j++) x[64 + j] = (float) (j - 16) * 0.5f;        /* block 2: many halves after scaling */
    x[64 + 5] = 127.0f;                                                       /* ...with d = 1 exactly */
    for (int j = 0; j < 32; j++) x[96 + j] = (j & 1) ? 1e-6f : -3e-7f;       /* block 3: fp16-subnormal scale */
    for (int j = 0; j < 32; j++) x[128 + j] = (float) j * 1e4f;               /* block 4: large */
    for (int j = 0; j < 32; j++) x[160 + j] = (j == 7) ? -2.5f : 1e-3f;       /* block 5: one negative outlier */
    for (int j = 0; j < 32; j++) x[192 + j] = (float) (2 * j - 31) * (127.0f / 62.0f); /* block 6: exact .5 ties */
    aya_q8_acts a, b;
    CHECK(aya_quantize_activations(x, 2, N / 2, &a) == 0, "scalar quantizer failed");
    int8_t *q = malloc(N);
    float *d = malloc(N / 32 * sizeof(float));
    int32_t *sum = malloc(N / 32 * sizeof(int32_t));
    memcpy(q, a.q, N); /* same thread: the next call reuses the buffers */
    memcpy(d, a.d, N / 32 * sizeof(float));
    memcpy(sum, a.sum, N / 32 * sizeof(int32_t));
    CHECK(aya_quantize_activations_avx2(x, 2, N / 2, &b) == 0, "avx2 quantizer failed");
    for (int i = 0; i < N; i++) CHECK(q[i] == b.q[i], "avx2 quantizer: q[%d] = %d, scalar %d (x %.9g)", i, b.q[i], q[i], x[i]);
    for (int i = 0; i < N / 32; i++) {
        CHECK(d[i] == b.d[i], "avx2 quantizer: d[%d] = %.9g, scalar %.9g", i, b.d[i], d[i]);
        int32_t want = 0;
        for (int j = 0; j < 32; j++) want += q[i * 32 + j];
        CHECK(sum[i] == want && b.sum[i] == want, "quantizer: sum[%d] = %d / %d, want %d", i, sum[i], b.sum[i], want);
    }
    CHECK(q[32 * 6] == -127 && q[32 * 6 + 31] == 127, "block of ties: ends %d %d", q[32 * 6], q[32 * 6 + 31]);
    free(x); free(q); free(d); free(sum);
#endif
}

int main(void) {
    quantizer_is_exact();
    use_isa("scalar");
    hand_computed();
    for (int i = 0; i < SIMD_ISA_COUNT; i++) {
        if (!aya_isa_available(simd_isas[i]) || !use_isa(simd_isas[i])) continue;
        hand_computed();
        simd_matches_scalar(simd_isas[i], aya_matmul_q8_0_f32, 34, "q8_0");
        simd_matches_scalar(simd_isas[i], aya_matmul_q4_0_f32, 18, "q4_0");
        decode_offsets_and_pieces(simd_isas[i], aya_matmul_q8_0_f32, 34, "q8_0");
        decode_offsets_and_pieces(simd_isas[i], aya_matmul_q4_0_f32, 18, "q4_0");
        decode_reuses_only_current_quantization(simd_isas[i], aya_matmul_q8_0_f32, 34, "q8_0");
        decode_reuses_only_current_quantization(simd_isas[i], aya_matmul_q4_0_f32, 18, "q4_0");
    }
    decode_regroup_not_reused_after_other_writer();
    return finish("test_quant");
}
