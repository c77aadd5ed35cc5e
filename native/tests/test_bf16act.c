/* aya_matmul_bf16_bf16 (opt-in bf16 activations) on every ISA this machine runs, against values computed here:
 * the bf16 rounding on hand-picked cases, and each output against a double-precision sum of w * bf16(x). */
#include "test_util.h"

static float from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    return from_bits((uint32_t) h << 16);
}

/* The rounding of one x value, seen through the API: weight 1.0, in_dim 1, so out = bf16(x) exactly. */
static void check_rounding(const char *isa) {
    if (!use_isa(isa)) return;
    static const struct { uint32_t in; uint16_t want; } cases[] = {
        { 0x3f800000u, 0x3f80 }, /* 1.0 exact */
        { 0x3f808000u, 0x3f80 }, /* 1 + 2^-8: halfway between 1 and 1 + 2^-7, ties to even (down) */
        { 0x3f818000u, 0x3f82 }, /* 1 + 3 * 2^-8: halfway, ties to even (up) */
        { 0x3f808001u, 0x3f81 }, /* just above halfway: up */
        { 0x3f807fffu, 0x3f80 }, /* just below halfway: down */
        { 0xbf818000u, 0xbf82 }, /* negative ties to even the same way */
        { 0x7f800000u, 0x7f80 }, /* inf */
        { 0xff800000u, 0xff80 }, /* -inf */
        { 0x7f7fffffu, 0x7f80 }, /* FLT_MAX rounds up to inf */
        { 0x7fc00000u, 0x7fc0 }, /* quiet NaN */
        { 0x7f800001u, 0x7fc0 }, /* signalling NaN whose payload is below bit 16: stays NaN, quiet */
        { 0x00000001u, 0x0000 }, /* f32 denormals become zero, sign kept (vcvtne2ps2bf16) */
        { 0x807fffffu, 0x8000 },
        { 0x00800000u, 0x0080 }, /* smallest normal stays */
        { 0x80000000u, 0x8000 },
    };
    const uint16_t one = 0x3f80;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float x = from_bits(cases[i].in), out[2];
        for (int tokens = 1; tokens <= 2; tokens++) { /* decode and prefill code */
            float xs[2] = { x, x };
            aya_matmul_bf16_bf16(&one, xs, out, tokens, 1, 1, 0, 1);
            uint32_t got;
            memcpy(&got, &out[tokens - 1], sizeof got);
            uint16_t magnitude = cases[i].want & 0x7fff;
            int ok = magnitude > 0x7f80 ? isnan(out[tokens - 1])
                     : magnitude == 0   ? out[tokens - 1] == 0.0f /* 0 + -0 = +0: a sum cannot show the sign */
                                        : got == (uint32_t) cases[i].want << 16;
            CHECK(ok, "%s tokens %d: bf16(0x%08x) = 0x%08x, want 0x%04x0000", isa, tokens, cases[i].in, got, cases[i].want);
        }
    }
}

/* out of the public entry point vs sum_i w[r, i] * bf16(x[t, i]) in double (to_bf16 of test_util: finite values). */
static void check_isa(const char *isa, int rows, int in_dim, int tokens) {
    if (!use_isa(isa)) return;
    int out_stride = rows + 2;
    float *x = random_floats((size_t) tokens * in_dim, -1.0f, 1.0f);
    uint16_t *w = random_weights16((size_t) rows * in_dim, 0);
    float *out = calloc((size_t) tokens * out_stride, sizeof(float));
    float *f32_path = calloc((size_t) tokens * out_stride, sizeof(float));
    int row_start = rows > 4 ? 1 : 0, row_end = rows > 4 ? rows - 1 : rows;
    aya_matmul_bf16_bf16(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    aya_matmul_bf16_f32(w, x, f32_path, tokens, in_dim, out_stride, row_start, row_end);
    int bad = 0, differs = 0;
    for (int t = 0; t < tokens; t++) {
        for (int r = 0; r < out_stride; r++) {
            float got = out[(size_t) t * out_stride + r];
            if (r < row_start || r >= row_end) {
                CHECK(got == 0.0f, "%s: wrote row %d outside [%d, %d)", isa, r, row_start, row_end);
                continue;
            }
            double want = 0, scale = 0;
            for (int i = 0; i < in_dim; i++) {
                uint16_t xr = to_bf16(x[(size_t) t * in_dim + i]);
                double p = (double) bf16_to_f32(w[(size_t) r * in_dim + i]) * (double) bf16_to_f32(xr);
                want += p;
                scale += fabs(p);
            }
            if (!close_enough(got, (float) want, scale, 2e-6 * sqrt((double) in_dim) + 1e-6, 1e-30) && bad++ < 3) {
                CHECK(0, "%s %dx%d tokens %d: out[%d][%d] = %.9g, want %.9g", isa, rows, in_dim, tokens, t, r, got, want);
            }
            differs += got != f32_path[(size_t) t * out_stride + r];
        }
    }
    /* x in [-1, 1] is almost never bf16-exact: the rounding must show */
    CHECK(in_dim < 8 || differs > 0, "%s %dx%d: bf16 activations gave exactly the f32 results", isa, rows, in_dim);
    free(x); free(w); free(out); free(f32_path);
}

/* A step of a few tokens (a batch of decoding sequences) gives each token's outputs bit for bit as the token alone,
 * with in_dim odd (a half pair at the end) or a whole number of lines per row with the weights at offsets from a line
 * (the decode loop's head); and an offset changes nothing but the rounding. */
static void check_few_tokens_as_alone(const char *isa, int in_dim) {
    if (!use_isa(isa)) return;
    enum { ROWS = 13, TOKENS = 7 };
    float *x = random_floats((size_t) TOKENS * in_dim, -1.0f, 1.0f);
    uint16_t *src = random_weights16((size_t) ROWS * in_dim, 0);
    char *buffer = aligned_alloc(64, ((size_t) ROWS * in_dim * 2 + 128 + 63) / 64 * 64);
    float batch[TOKENS * ROWS], alone[ROWS], aligned[TOKENS * ROWS];
    static const size_t offsets[] = { 0, 2, 4, 16, 32, 56, 62 };
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
        uint16_t *w = (uint16_t *) (buffer + offsets[o]);
        memcpy(w, src, (size_t) ROWS * in_dim * 2);
        for (int tokens = 1; tokens <= TOKENS; tokens++) {
            aya_matmul_bf16_bf16(w, x, batch, tokens, in_dim, ROWS, 0, ROWS);
            if (tokens == TOKENS && o == 0) memcpy(aligned, batch, sizeof aligned);
            if (tokens == TOKENS) {
                for (int i = 0; i < TOKENS * ROWS; i++) {
                    CHECK(fabsf(batch[i] - aligned[i]) <= 1e-5f * (fabsf(aligned[i]) + 1.0f),
                          "%s in_dim %d offset %zu: out %d = %.9g, at offset 0 %.9g", isa, in_dim, offsets[o], i,
                          batch[i], aligned[i]);
                }
            }
            for (int t = 0; t < tokens; t++) {
                aya_matmul_bf16_bf16(w, x + (size_t) t * in_dim, alone, 1, in_dim, ROWS, 0, ROWS);
                CHECK(memcmp(batch + (size_t) t * ROWS, alone, sizeof alone) == 0,
                      "%s in_dim %d offset %zu: token %d of %d differs from the token alone", isa, in_dim, offsets[o],
                      t, tokens);
            }
        }
    }
    free(x); free(src); free(buffer);
}

/* NaN in x reaches the output; an f32 denormal x counts as zero (the f32 path keeps it). */
static void check_special(const char *isa) {
    if (!use_isa(isa)) return;
    enum { N = 37 };
    uint16_t w[2 * N];
    float x[2 * N], out[4];
    for (int i = 0; i < 2 * N; i++) w[i] = to_bf16(1.0f);
    for (int i = 0; i < 2 * N; i++) x[i] = 0.0f;
    x[5] = from_bits(0x7fc00000u);      /* token 0: a NaN */
    x[N + 36] = from_bits(0x00400000u); /* token 1: a denormal (2^-127), last element (the odd tail) */
    aya_matmul_bf16_bf16(w, x, out, 2, N, 2, 0, 2);
    CHECK(isnan(out[0]) && isnan(out[1]), "%s: NaN in x gave %g, %g", isa, out[0], out[1]);
    CHECK(out[2] == 0.0f && out[3] == 0.0f, "%s: denormal x gave %g, %g (want 0)", isa, out[2], out[3]);
    aya_matmul_bf16_bf16(w, x + N, out, 1, N, 2, 0, 2); /* decode path */
    CHECK(out[0] == 0.0f && out[1] == 0.0f, "%s decode: denormal x gave %g, %g (want 0)", isa, out[0], out[1]);
}

int main(void) {
    static const char *const isas[] = { "scalar", "avx2", "avx512", "avx512bf16", "neon" };
    static const int dims[][3] = {
        { 1, 1, 1 }, { 3, 7, 2 }, { 9, 33, 1 }, { 40, 255, 3 }, { 35, 257, 9 }, { 6, 520, 13 }, { 70, 64, 4 },
        { 45, 1031, 14 }, { 40, 331, 13 }, /* x transposed 16 x 16 at a time, then a ragged end of pairs */
        { 100, 70, 40 }, { 13, 300, 50 }, /* two row blocks of the GEMM; token tiles of 32 + 16 and 32 + 18 */
    };
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!aya_isa_available(isas[i])) continue;
        check_rounding(isas[i]);
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) check_isa(isas[i], dims[d][0], dims[d][1], dims[d][2]);
        check_special(isas[i]);
        check_few_tokens_as_alone(isas[i], 301);
        check_few_tokens_as_alone(isas[i], 256);
        CHECK(strcmp(aya_isa_name(), isas[i]) == 0, "aya_isa_name() = %s after selecting %s", aya_isa_name(), isas[i]);
    }
    /* avx512bf16 is refused cleanly where the CPU lacks it */
    if (!aya_isa_available("avx512bf16")) {
        CHECK(aya_set_isa("avx512bf16") != AYA_OK && strstr(aya_last_error(), "avx512bf16") != NULL,
              "aya_set_isa(avx512bf16) without the CPU feature: %s", aya_last_error());
    }
    return finish("test_bf16act");
}
