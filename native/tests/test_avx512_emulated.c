/* The AVX-512 matmul and embedding code, compiled on SIMDe's emulated intrinsics (CMakeLists.txt), against scalar:
 * on CPUs without AVX-512 this is the only way that code runs. Odd sizes, several tokens, rows in slices. */
#include "kernels_internal.h"
#include "test_util.h"

extern const aya_kernel_table aya_table_avx512_emulated;
void aya_matmul_q8_0_avx512vnni_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                         int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_avx512vnni_emulated(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                         int32_t out_stride, int32_t row_start, int32_t row_end);

/* The VNNI Q8_0 / Q4_0 kernels against scalar: every tile remainder (rows % 4, tokens % 4; 16+ / 48+ tokens: rows %
 * 2, tokens % 8), odd block counts (the 256-bit last block), one block, long rows, random bytes (Q8_0 weights include
 * -128), row slices. */
static void quantized_vnni(void) {
    static const int shapes[][3] = { /* tokens, in_dim, rows */
        { 1, 32, 1 }, { 1, 32, 7 }, { 1, 96, 6 }, { 1, 2048, 33 }, { 2, 64, 5 }, { 3, 96, 17 }, { 4, 160, 18 },
        { 5, 224, 13 }, { 6, 2048, 9 }, { 7, 352, 11 }, { 9, 64, 70 }, { 1, 11008, 5 },
        /* the many-token path (Q8_0 from 16 tokens, Q4_0 from 48): token remainders mod 8, odd rows, a second panel
         * and k chunk */
        { 16, 32, 3 }, { 17, 96, 1 }, { 21, 2080, 5 }, { 20, 256, 67 }, { 23, 160, 2 }, { 18, 64, 4 }, { 22, 96, 3 },
        { 19, 64, 2 }, { 48, 32, 3 }, { 49, 96, 1 }, { 53, 2080, 5 }, { 52, 256, 67 }, { 55, 160, 2 }, { 50, 64, 4 },
        { 54, 96, 3 }, { 51, 64, 2 },
    };
    const int block_bytes[2] = { 34, 18 };
    aya_matmul_fn scalar[2] = { aya_table_generic.matmul[AYA_WEIGHT_Q8_0], aya_table_generic.matmul[AYA_WEIGHT_Q4_0] };
    aya_matmul_fn vnni[2] = { aya_matmul_q8_0_avx512vnni_emulated, aya_matmul_q4_0_avx512vnni_emulated };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int tokens = shapes[s][0], in_dim = shapes[s][1], rows = shapes[s][2], stride = rows + 2;
        for (int k = 0; k < 2; k++) {
            size_t row_bytes = (size_t) in_dim / 32 * block_bytes[k];
            uint8_t *w = malloc(rows * row_bytes);
            for (size_t i = 0; i < rows * row_bytes; i++) w[i] = (uint8_t) rng_next();
            for (int r = 0; r < rows; r++) /* sane scales: f16 in [2^-8, 2^-7), either sign */
                for (int b = 0; b < in_dim / 32; b++) {
                    uint16_t d = (uint16_t) (0x1c00 | (rng_next() & 0x83ff));
                    w[r * row_bytes + b * block_bytes[k]] = (uint8_t) d;
                    w[r * row_bytes + b * block_bytes[k] + 1] = (uint8_t) (d >> 8);
                }
            float *x = random_floats((size_t) tokens * in_dim, -3, 3);
            float *want = calloc((size_t) tokens * stride, sizeof(float));
            float *got = calloc((size_t) tokens * stride, sizeof(float));
            scalar[k](w, x, want, tokens, in_dim, stride, 0, rows);
            vnni[k](w, x, got, tokens, in_dim, stride, 0, rows / 3);
            vnni[k](w, x, got, tokens, in_dim, stride, rows / 3, rows);
            int bad = 0;
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < stride && bad < 3; r++) {
                    float a = want[t * stride + r], b = got[t * stride + r];
                    if (r >= rows) {
                        CHECK(b == 0.0f, "emulated vnni wrote outside its rows");
                        continue;
                    }
                    if (!(fabsf(a - b) <= 1e-5f * (fabsf(a) + 1) * sqrtf((float) in_dim / 32))) {
                        bad++;
                        CHECK(0, "emulated vnni %s %dx%dx%d t=%d r=%d: %g vs scalar %g", k ? "q4_0" : "q8_0", tokens,
                              in_dim, rows, t, r, b, a);
                    }
                }
            free(w); free(x); free(want); free(got);
        }
    }
}

/* The decode loop's head (weights at any offset from a cache line) and steps of several tokens, emulated: against
 * scalar, and each token of a step of 1..AYA_MV_FEW_TOKENS bit for bit as alone. */
static void weight_offsets_and_few_tokens(void) {
    enum { ROWS = 9, IN = 256 };
    const char *names[3] = { "f32", "f16", "bf16" };
    float *x = random_floats((size_t) AYA_MV_FEW_TOKENS * IN, -1.0f, 1.0f);
    for (int type = 0; type < 3; type++) {
        size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2, n = (size_t) ROWS * IN;
        void *src = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                           : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
        char *buffer = aligned_alloc(64, (n * wsize + 128 + 63) / 64 * 64);
        float want[AYA_MV_FEW_TOKENS * ROWS], batch[AYA_MV_FEW_TOKENS * ROWS], alone[ROWS];
        aya_table_generic.matmul[type](src, x, want, AYA_MV_FEW_TOKENS, IN, ROWS, 0, ROWS);
        for (size_t offset = 0; offset < 64; offset += 2 * wsize) {
            void *w = buffer + offset;
            memcpy(w, src, n * wsize);
            for (int tokens = 1; tokens <= AYA_MV_FEW_TOKENS; tokens += 3) {
                aya_table_avx512_emulated.matmul[type](w, x, batch, tokens, IN, ROWS, 0, ROWS);
                for (int t = 0; t < tokens; t++) {
                    aya_table_avx512_emulated.matmul[type](w, x + (size_t) t * IN, alone, 1, IN, ROWS, 0, ROWS);
                    for (int r = 0; r < ROWS; r++) {
                        float got = batch[t * ROWS + r], ref = want[t * ROWS + r];
                        CHECK(fabsf(got - ref) <= 1e-4f * (fabsf(ref) + 1), "emulated avx512 %s at offset %zu: %.9g, scalar %.9g",
                              names[type], offset, got, ref);
                        CHECK(memcmp(&got, &alone[r], 4) == 0, "emulated avx512 %s at offset %zu: token %d of %d differs from alone",
                              names[type], offset, t, tokens);
                    }
                }
            }
        }
        free(buffer); free(src);
    }
    free(x);
}

int main(void) {
    static const int dims[][3] = { /* rows, in_dim, tokens */
        { 1, 1, 1 }, { 3, 7, 1 }, { 5, 16, 2 }, { 7, 17, 3 }, { 33, 255, 1 }, { 19, 256, 5 }, { 21, 300, 4 },
        { 64, 2048, 1 }, { 37, 520, 7 }, { 4, 32, 64 }, { 50, 513, 9 },
        /* the packed prefill GEMM: token counts that split into tiles of 8 and 7 (23, 29, 60) or leave a short tile
         * (19), more tokens than one block (300), row ranges that end inside a panel or block, inputs that end inside
         * a k block, or inside a vector */
        { 150, 777, 23 }, { 17, 40, 300 }, { 33, 520, 19 }, { 64, 256, 8 }, { 96, 1030, 29 }, { 71, 9, 12 },
        { 40, 130, 60 },
        { 75, 1000, 1 }, /* decode with the next rows prefetched (more than 64 KiB of rows) and a tail of rows */
    };
    const char *names[3] = { "f32", "f16", "bf16" };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int rows = dims[d][0], in_dim = dims[d][1], tokens = dims[d][2], out_stride = rows + 3;
        size_t n = (size_t) rows * in_dim, out_n = (size_t) tokens * out_stride;
        float *x = random_floats((size_t) tokens * in_dim, -1.0f, 1.0f);
        for (int type = 0; type < 3; type++) {
            void *w = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                             : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
            float *want = calloc(out_n, sizeof(float)), *got = calloc(out_n, sizeof(float)),
                  *sliced = calloc(out_n, sizeof(float)), *abs_want = calloc(out_n, sizeof(float));
            aya_table_generic.matmul[type](w, x, want, tokens, in_dim, out_stride, 0, rows);
            aya_table_avx512_emulated.matmul[type](w, x, got, tokens, in_dim, out_stride, 0, rows);
            int cut1 = rows / 3, cut2 = rows / 3 + (rows > 2);
            aya_table_avx512_emulated.matmul[type](w, x, sliced, tokens, in_dim, out_stride, 0, cut1);
            aya_table_avx512_emulated.matmul[type](w, x, sliced, tokens, in_dim, out_stride, cut1, cut2);
            aya_table_avx512_emulated.matmul[type](w, x, sliced, tokens, in_dim, out_stride, cut2, rows);
            /* scale of each dot product: the same matmul over |w| and |x| */
            float *wabs_x = random_floats((size_t) tokens * in_dim, 0, 0);
            for (size_t i = 0; i < (size_t) tokens * in_dim; i++) wabs_x[i] = fabsf(x[i]);
            void *wabs = malloc(n * (type == AYA_WEIGHT_F32 ? 4 : 2) + 1);
            for (size_t i = 0; i < n; i++) {
                if (type == AYA_WEIGHT_F32) ((float *) wabs)[i] = fabsf(((float *) w)[i]);
                else ((uint16_t *) wabs)[i] = ((uint16_t *) w)[i] & 0x7fff;
            }
            aya_table_generic.matmul[type](wabs, wabs_x, abs_want, tokens, in_dim, out_stride, 0, rows);
            int bad = 0;
            for (int t = 0; t < tokens && bad < 3; t++) {
                for (int r = 0; r < out_stride && bad < 3; r++) {
                    size_t o = (size_t) t * out_stride + r;
                    if (r >= rows) {
                        CHECK(got[o] == 0.0f, "emulated avx512 wrote outside its rows");
                        continue;
                    }
                    if (!close_enough(got[o], want[o], abs_want[o], 2e-6 * sqrt((double) in_dim) + 1e-6, 1e-30)) {
                        bad++;
                        CHECK(0, "emulated avx512 %s %dx%d tokens %d: out[%d][%d] = %.9g, scalar %.9g", names[type], rows,
                              in_dim, tokens, t, r, got[o], want[o]);
                    }
                    if (sliced[o] != got[o]) {
                        bad++;
                        CHECK(0, "emulated avx512 %s: slices give %.9g, one call %.9g", names[type], sliced[o], got[o]);
                    }
                }
            }
            free(w); free(want); free(got); free(sliced); free(abs_want); free(wabs_x); free(wabs);
        }
        free(x);
    }
    /* embedding rows widen exactly */
    for (int type = 1; type < 3; type++) {
        int dim = 37;
        uint16_t *table = random_weights16((size_t) 4 * dim, type == AYA_WEIGHT_F16);
        float want[37], got[37];
        aya_table_generic.embed[type](table, 2, dim, want);
        aya_table_avx512_emulated.embed[type](table, 2, dim, got);
        for (int i = 0; i < dim; i++) CHECK(memcmp(&want[i], &got[i], 4) == 0, "emulated avx512 embed %s[%d]", names[type], i);
        free(table);
    }
    quantized_vnni();
    weight_offsets_and_few_tokens();
    return finish("test_avx512_emulated");
}
