/* The AVX512-VNNI Q5_0 / Q4_K / Q6_K kernels compiled on SIMDe (kquant_avx512_emulated.c, and the packed Q4_K / Q6_K
 * prefill of quant_avx512_emulated.c) against the scalar kernels: decode and every token-group remainder of prefill,
 * several rows, row slices, random blocks. */
#include "kquant.h"
#include "test_util.h"

void aya_matmul_q5_0_avx512vnni_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                         int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_k_avx512vnni_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                         int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_avx512vnni_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                         int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_k_avx512oct_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                        int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_avx512oct_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                        int32_t out_stride, int32_t row_start, int32_t row_end);

int main(void) {
    static const int shapes[][3] = { /* tokens, in_dim, rows */
        { 1, 256, 3 }, { 1, 1024, 9 }, { 2, 512, 5 }, { 3, 256, 7 }, { 4, 768, 6 }, { 5, 256, 4 }, { 9, 512, 3 },
        { 6, 2304, 5 }, { 17, 512, 67 },
        /* decode: slices of 11-21 rows, four a quarter apart per pass and 0-3 left over */
        { 1, 256, 23 }, { 1, 512, 41 }, { 1, 256, 30 },
    };
    const int block_bytes[3] = { AYA_Q5_0_BYTES, AYA_Q4_K_BYTES, AYA_Q6_K_BYTES };
    const int block_values[3] = { AYA_QK, AYA_QK_K, AYA_QK_K };
    aya_matmul_fn scalar[3] = { aya_kquant_generic.q5_0, aya_kquant_generic.q4_k, aya_kquant_generic.q6_k };
    aya_matmul_fn vnni[3] = { aya_matmul_q5_0_avx512vnni_emulated, aya_matmul_q4_k_avx512vnni_emulated,
                              aya_matmul_q6_k_avx512vnni_emulated };
    aya_matmul_fn packed[3] = { NULL, aya_matmul_q4_k_avx512oct_emulated, aya_matmul_q6_k_avx512oct_emulated };
    const char *names[3] = { "q5_0", "q4_k", "q6_k" };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int tokens = shapes[s][0], in_dim = shapes[s][1], rows = shapes[s][2], stride = rows + 2;
        for (int k = 0; k < 3; k++) {
            size_t row_bytes = (size_t) in_dim / block_values[k] * block_bytes[k];
            uint8_t *w = malloc(rows * row_bytes);
            for (size_t i = 0; i < rows * row_bytes; i++) w[i] = (uint8_t) rng_next();
            for (size_t b = 0; b < rows * row_bytes / block_bytes[k]; b++) { /* sane f16 scales, either sign */
                uint8_t *blk = w + b * block_bytes[k];
                for (int f = 0; f < (k == 1 ? 2 : 1); f++) {
                    uint16_t d = (uint16_t) (0x1c00 | (rng_next() & 0x83ff));
                    uint8_t *at = k == 2 ? blk + 208 : blk + 2 * f;
                    at[0] = (uint8_t) d;
                    at[1] = (uint8_t) (d >> 8);
                }
            }
            float *x = random_floats((size_t) tokens * in_dim, -3, 3);
            float *want = calloc((size_t) tokens * stride, sizeof(float));
            float *got = calloc((size_t) tokens * stride, sizeof(float));
            float *values = malloc(4 * (size_t) in_dim);
            scalar[k](w, x, want, tokens, in_dim, stride, 0, rows);
            for (int p = 0; p < 2; p++) { /* the row kernels, then the packed prefill */
                aya_matmul_fn fn = p == 0 ? vnni[k] : packed[k];
                if (fn == NULL) continue;
                const char *kind = p == 0 ? "vnni" : "packed vnni";
                memset(got, 0, (size_t) tokens * stride * sizeof(float));
                fn(w, x, got, tokens, in_dim, stride, 0, rows / 2);
                fn(w, x, got, tokens, in_dim, stride, rows / 2, rows);
                for (int r = 0; r < stride; r++) {
                    if (r < rows) aya_dequantize_kquant(AYA_WEIGHT_Q5_0 + k, w + r * row_bytes, in_dim, values);
                    for (int t = 0; t < tokens; t++) {
                        float a = want[t * stride + r], b = got[t * stride + r];
                        if (r >= rows) {
                            CHECK(b == 0.0f, "emulated %s %s wrote outside its rows", kind, names[k]);
                            continue;
                        }
                        double scale = 0.0;
                        for (int i = 0; i < in_dim; i++) scale += fabs((double) values[i] * x[(size_t) t * in_dim + i]);
                        CHECK(close_enough(a, b, scale, 3e-6, 1e-30), "emulated %s %s %dx%dx%d t=%d r=%d: %.9g vs scalar %.9g",
                              kind, names[k], tokens, in_dim, rows, t, r, b, a);
                    }
                }
            }
            free(w); free(x); free(want); free(got); free(values);
        }
    }
    return finish("test_kquant_emulated");
}
