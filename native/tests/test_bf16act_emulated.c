/* aya_matmul_bf16_bf16's AVX512_BF16 code (vdpbf16ps), compiled on SIMDe's emulation of the instructions
 * (CMakeLists.txt), against the scalar reference: on CPUs without AVX512_BF16 this is the only way that code runs.
 * Odd in_dim, tokens 1..13 and more, rows in slices, nothing written outside [row_start, row_end). */
#include "bf16act.h"
#include "test_util.h"

void aya_matmul_bf16_bf16_avx512bf16_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                              int32_t out_stride, int32_t row_start, int32_t row_end);

/* Runs both on one shape; exact: inputs are small integers, so every order of the f32 sums gives the same bits. */
static void check_shape(int rows, int in_dim, int tokens, int exact) {
    int out_stride = rows + 3;
    size_t n = (size_t) rows * in_dim, out_n = (size_t) tokens * out_stride;
    float *x = random_floats((size_t) tokens * in_dim, -1.0f, 1.0f);
    uint16_t *w = random_weights16(n, 0);
    if (exact) {
        for (size_t i = 0; i < (size_t) tokens * in_dim; i++) x[i] = (float) ((int) (rng_next() % 7) - 3);
        for (size_t i = 0; i < n; i++) w[i] = to_bf16((float) ((int) (rng_next() % 9) - 4));
    }
    float *want = calloc(out_n, sizeof(float)), *got = calloc(out_n, sizeof(float)),
          *sliced = calloc(out_n, sizeof(float)), *abs_want = calloc(out_n, sizeof(float));
    aya_matmul_bf16_bf16_generic(w, x, want, tokens, in_dim, out_stride, 0, rows);
    aya_matmul_bf16_bf16_avx512bf16_emulated(w, x, got, tokens, in_dim, out_stride, 0, rows);
    int cut1 = rows / 3, cut2 = rows / 3 + (rows > 2);
    aya_matmul_bf16_bf16_avx512bf16_emulated(w, x, sliced, tokens, in_dim, out_stride, 0, cut1);
    aya_matmul_bf16_bf16_avx512bf16_emulated(w, x, sliced, tokens, in_dim, out_stride, cut1, cut2);
    aya_matmul_bf16_bf16_avx512bf16_emulated(w, x, sliced, tokens, in_dim, out_stride, cut2, rows);
    /* scale of each dot product: the same matmul over |w| and |x| */
    float *x_abs = malloc((size_t) tokens * in_dim * sizeof(float) + 1);
    uint16_t *w_abs = malloc(n * sizeof(uint16_t) + 1);
    for (size_t i = 0; i < (size_t) tokens * in_dim; i++) x_abs[i] = fabsf(x[i]);
    for (size_t i = 0; i < n; i++) w_abs[i] = w[i] & 0x7fff;
    aya_matmul_bf16_bf16_generic(w_abs, x_abs, abs_want, tokens, in_dim, out_stride, 0, rows);
    int bad = 0;
    for (int t = 0; t < tokens && bad < 3; t++) {
        for (int r = 0; r < out_stride && bad < 3; r++) {
            size_t o = (size_t) t * out_stride + r;
            if (r >= rows) {
                if (got[o] != 0.0f || sliced[o] != 0.0f) {
                    bad++;
                    CHECK(0, "emulated avx512bf16 %dx%d tokens %d wrote outside its rows", rows, in_dim, tokens);
                }
                continue;
            }
            int ok = exact ? got[o] == want[o]
                           : close_enough(got[o], want[o], abs_want[o], 2e-6 * sqrt((double) in_dim) + 1e-6, 1e-30);
            if (!ok) {
                bad++;
                CHECK(0, "emulated avx512bf16 %dx%d tokens %d%s: out[%d][%d] = %.9g, scalar %.9g", rows, in_dim, tokens,
                      exact ? " (exact)" : "", t, r, got[o], want[o]);
            }
            if (sliced[o] != got[o]) {
                bad++;
                CHECK(0, "emulated avx512bf16 %dx%d tokens %d: slices give %.9g, one call %.9g", rows, in_dim, tokens,
                      sliced[o], got[o]);
            }
        }
    }
    free(x); free(w); free(want); free(got); free(sliced); free(abs_want); free(x_abs); free(w_abs);
}

int main(void) {
    static const int dims[][3] = { /* rows, in_dim, tokens: odd in_dim, partial blocks (96 rows, 256 k), 1..64 tokens */
        { 1, 1, 1 }, { 1, 1, 2 }, { 3, 7, 1 }, { 5, 16, 2 }, { 7, 17, 3 }, { 33, 31, 4 }, { 31, 33, 5 }, { 32, 64, 6 },
        { 40, 255, 7 }, { 19, 256, 8 }, { 65, 257, 9 }, { 21, 300, 10 }, { 2, 63, 11 }, { 37, 520, 12 }, { 36, 97, 13 },
        { 64, 2048, 1 }, { 50, 513, 25 }, { 4, 32, 64 }, { 97, 611, 1 }, { 5, 1, 30 },
        { 45, 1031, 14 }, { 40, 331, 13 }, /* x transposed 16 x 16 at a time, then a ragged end of pairs */
        { 100, 70, 40 }, { 13, 300, 50 }, /* two row blocks of the GEMM; token tiles of 32 + 16 and 32 + 18 */
    };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        check_shape(dims[d][0], dims[d][1], dims[d][2], 0);
        check_shape(dims[d][0], dims[d][1], dims[d][2], 1);
    }
    return finish("test_bf16act_emulated");
}
