/* The prefill GEMM of every ISA (native/src/gemm_loops.h around each ISA's micro-kernel) on odd shapes: rows, tokens
 * and in_dim that are not multiples of the panel, token-tile, k-block or vector sizes, more tokens than one token
 * block, row slices that start and end inside a panel.
 *   - 8+ tokens (the packed path): every output is one FMA chain over k in order, so it must equal a scalar fmaf loop
 *     bit for bit, whatever the ISA, slicing or token tiling (on SIMDe's emulation: a loop of unfused multiply-adds);
 *   - 2-7 tokens (the tiled dot-product path): within the matmul tolerance of that same reference;
 *   - a call writes only its rows, and three slices give the bits of one call. */
#include "kernels_internal.h"
#include "test_util.h"

typedef void (*gemm_fn)(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                        int32_t out_stride, int32_t row_start, int32_t row_end);

#if defined(AYA_TEST_EMULATED)
void aya_gemm_avx512_emulated(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                              int32_t out_stride, int32_t row_start, int32_t row_end);
#endif

/* isa: the CPU feature set it needs (NULL: runs anywhere); fused: whether its multiply-add rounds once (SIMDe's
 * portable fmadd, without the instruction, rounds the product and the sum separately). */
static const struct { const char *name, *isa; gemm_fn gemm; int fused; } gemms[] = {
#if defined(__x86_64__)
    { "avx2", "avx2", aya_gemm_avx2, 1 },
    { "avx512", "avx512", aya_gemm_avx512, 1 },
#endif
#if defined(__aarch64__)
    { "neon", "neon", aya_gemm_neon, 1 },
#endif
#if defined(AYA_TEST_EMULATED)
    { "avx512 (SIMDe emulation)", NULL, aya_gemm_avx512_emulated, 0 },
#endif
    { NULL, NULL, NULL, 0 },
};

static const float UNTOUCHED = -12345.0f; /* what out holds where a call must not write */

static float weight(int type, const void *w, size_t i) {
    if (type == AYA_WEIGHT_F32) return ((const float *) w)[i];
    if (type == AYA_WEIGHT_F16) return aya_f16_to_f32(((const uint16_t *) w)[i]);
    return aya_bf16_to_f32(((const uint16_t *) w)[i]);
}

static int same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_shape(const char *name, gemm_fn gemm, int fused, int type, int rows, int in_dim, int tokens) {
    static const char *const type_names[3] = { "f32", "f16", "bf16" };
    int out_stride = rows + 3; /* a wider output row than the call's rows, as in a fused projection */
    size_t n = (size_t) rows * in_dim, out_n = (size_t) tokens * out_stride;
    float *x = random_floats((size_t) tokens * in_dim, -1.0f, 1.0f);
    void *w = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                     : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
    float *chain = malloc(out_n * sizeof(float)), *scale = malloc(out_n * sizeof(float));
    for (int t = 0; t < tokens; t++) {
        for (int r = 0; r < rows; r++) {
            float acc = 0.0f;
            double abs_sum = 0.0;
            for (int k = 0; k < in_dim; k++) {
                float wv = weight(type, w, (size_t) r * in_dim + k), xv = x[(size_t) t * in_dim + k];
                if (fused) {
                    acc = fmaf(wv, xv, acc);
                } else {
                    float product = wv * xv; /* rounded before the sum */
                    acc += product;
                }
                abs_sum += fabs((double) wv * xv);
            }
            chain[(size_t) t * out_stride + r] = acc;
            scale[(size_t) t * out_stride + r] = (float) abs_sum;
        }
    }
    float *whole = malloc(out_n * sizeof(float)), *sliced = malloc(out_n * sizeof(float)),
          *middle = malloc(out_n * sizeof(float));
    for (size_t i = 0; i < out_n; i++) whole[i] = sliced[i] = middle[i] = UNTOUCHED;
    int cut1 = rows / 3 + (rows > 8 ? 5 : 0) / 2, cut2 = rows - rows / 4; /* inside panels for most shapes */
    if (cut1 > cut2) cut1 = cut2;
    gemm(type, w, x, whole, tokens, in_dim, out_stride, 0, rows);
    gemm(type, w, x, sliced, tokens, in_dim, out_stride, 0, cut1);
    gemm(type, w, x, sliced, tokens, in_dim, out_stride, cut1, cut2);
    gemm(type, w, x, sliced, tokens, in_dim, out_stride, cut2, rows);
    gemm(type, w, x, middle, tokens, in_dim, out_stride, cut1, cut2);
    int bad = 0;
    for (int t = 0; t < tokens && bad < 3; t++) {
        for (int r = 0; r < out_stride && bad < 3; r++) {
            size_t o = (size_t) t * out_stride + r;
            if (r >= rows) {
                if (!same_bits(whole[o], UNTOUCHED) || !same_bits(sliced[o], UNTOUCHED)) {
                    bad++;
                    CHECK(0, "%s %s gemm %dx%d tokens %d wrote out[%d][%d], outside its rows", name, type_names[type],
                          rows, in_dim, tokens, t, r);
                }
                continue;
            }
            if (tokens >= 8 ? !same_bits(whole[o], chain[o])
                            : !close_enough(whole[o], chain[o], scale[o], 2e-6 * sqrt((double) in_dim) + 1e-6, 1e-30)) {
                bad++;
                CHECK(0, "%s %s gemm %dx%d tokens %d: out[%d][%d] = %.9g, %s chain %.9g (%s)", name, type_names[type],
                      rows, in_dim, tokens, t, r, whole[o], fused ? "fmaf" : "multiply-add", chain[o], tokens >= 8 ? "bit for bit" : "within tolerance");
            }
            if (!same_bits(sliced[o], whole[o])) {
                bad++;
                CHECK(0, "%s %s gemm %dx%d tokens %d: 3 slices give out[%d][%d] = %.9g, one call %.9g", name,
                      type_names[type], rows, in_dim, tokens, t, r, sliced[o], whole[o]);
            }
            int inside = r >= cut1 && r < cut2;
            if (!same_bits(middle[o], inside ? whole[o] : UNTOUCHED)) {
                bad++;
                CHECK(0, "%s %s gemm %dx%d tokens %d: rows [%d, %d) alone give out[%d][%d] = %.9g, want %.9g", name,
                      type_names[type], rows, in_dim, tokens, cut1, cut2, t, r, middle[o],
                      inside ? whole[o] : UNTOUCHED);
            }
        }
    }
    free(x); free(w); free(chain); free(scale); free(whole); free(sliced); free(middle);
}

int main(void) {
    /* Block sizes: AVX2 panels of 16 rows, k blocks of 256, token tiles of 6 (or 5); AVX-512 panels of 32 rows, k blocks
     * of 128, tiles of 8 (or 7); both: weight blocks of 128 rows (512 when packed x is over 2 MiB), token blocks of up
     * to 256, vectors of 8 or 16. */
    static const int shapes[][3] = { /* rows, in_dim, tokens */
        /* packed path: tokens that split into full and short tiles (13, 23, 29, 61) or leave one short tile (9, 12,
         * 19), more than one token block (257, 300), rows past one weight block (150, 200), in_dim inside a k block
         * or a vector (9, 130, 257, 777, 1030) or below one packing block (1, 7) */
        { 1, 1, 8 }, { 3, 7, 9 }, { 64, 256, 8 }, { 71, 9, 12 }, { 45, 257, 13 }, { 33, 520, 19 }, { 150, 777, 23 },
        { 96, 1030, 29 }, { 40, 130, 60 }, { 129, 300, 61 }, { 200, 129, 257 }, { 17, 40, 300 },
        /* long rows: packed x over 2 MiB (AVX2: 15 x 35001 floats), so weight blocks of 4 x 128 rows (LONG_NC) */
        { 200, 35001, 9 },
        /* tiled path: 1, 2 and 3 tokens per step, 4-row blocks and single rows, k tiles of 256 */
        { 5, 16, 2 }, { 7, 17, 3 }, { 21, 300, 4 }, { 19, 256, 5 }, { 37, 520, 7 },
    };
    int ran = 0;
    for (int g = 0; gemms[g].name != NULL; g++) {
        if (gemms[g].isa != NULL && !aya_isa_available(gemms[g].isa)) {
            printf("%s: not available here, skipped\n", gemms[g].name);
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            for (int type = 0; type < 3; type++) {
                check_shape(gemms[g].name, gemms[g].gemm, gemms[g].fused, type, shapes[s][0], shapes[s][1], shapes[s][2]);
            }
        }
        printf("%s: checked\n", gemms[g].name);
        ran++;
    }
    if (ran == 0) printf("no prefill GEMM on this architecture\n");
    return finish("test_gemm");
}
