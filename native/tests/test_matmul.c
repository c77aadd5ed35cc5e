/* Matrix products and embedding lookups: hand-computed values on the scalar path, then every SIMD path against scalar
 * (odd sizes for the tails, several tokens, row ranges split into slices). */
#include "test_util.h"
#include "../src/kernels_internal.h"

typedef void (*matmul16_fn)(const uint16_t *, const float *, float *, int32_t, int32_t, int32_t, int32_t, int32_t);

static void test_hand_computed(void) {
    /* w = [[1, 2, 3], [4, 5, 6]], x0 = [1, 0, -1], x1 = [0.5, 0.5, 0.5] -> out = [[-2, -2], [3, 7.5]] */
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t w_bf16[6], w_f16[6] = { 0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600 }; /* 1..6 as f16 */
    for (int i = 0; i < 6; i++) w_bf16[i] = to_bf16(w[i]);
    float x[6] = { 1, 0, -1, 0.5f, 0.5f, 0.5f };
    const float want[4] = { -2, -2, 3, 7.5f };
    float out[4];
    aya_matmul_f32_f32(w, x, out, 2, 3, 2, 0, 2);
    for (int i = 0; i < 4; i++) CHECK(out[i] == want[i], "f32 out[%d] = %g, want %g", i, out[i], want[i]);
    aya_matmul_bf16_f32(w_bf16, x, out, 2, 3, 2, 0, 2);
    for (int i = 0; i < 4; i++) CHECK(out[i] == want[i], "bf16 out[%d] = %g, want %g", i, out[i], want[i]);
    aya_matmul_f16_f32(w_f16, x, out, 2, 3, 2, 0, 2);
    for (int i = 0; i < 4; i++) CHECK(out[i] == want[i], "f16 out[%d] = %g, want %g", i, out[i], want[i]);

    /* exact widening of special values */
    uint16_t f16[6] = { 0x3c00, 0xc000, 0x0001, 0x7bff, 0x3555, 0x8000 };
    const float f16_want[6] = { 1.0f, -2.0f, 5.9604644775390625e-8f, 65504.0f, 0.333251953125f, -0.0f };
    float e[6];
    aya_embed_f16_f32(f16, 0, 6, e);
    for (int i = 0; i < 6; i++) CHECK(e[i] == f16_want[i] && signbit(e[i]) == signbit(f16_want[i]), "f16 %04x -> %g, want %g", f16[i], e[i], f16_want[i]);
    uint16_t bf16[4] = { 0x3f80, 0xc040, 0x0000, 0x4049 };
    const float bf16_want[4] = { 1.0f, -3.0f, 0.0f, 3.140625f };
    aya_embed_bf16_f32(bf16, 0, 4, e);
    for (int i = 0; i < 4; i++) CHECK(e[i] == bf16_want[i], "bf16 %04x -> %g, want %g", bf16[i], e[i], bf16_want[i]);
    float table[6] = { 1, 2, 3, 4, 5, 6 };
    aya_embed_f32_f32(table, 1, 3, e);
    CHECK(e[0] == 4 && e[1] == 5 && e[2] == 6, "f32 embed row 1 = %g %g %g", e[0], e[1], e[2]);
}

/* out = matmul of one weight type over rows [0, rows), computed in the given slices. */
static void run_matmul(int type, const void *w, const float *x, float *out, int tokens, int in_dim, int out_stride,
                       int rows, int slices) {
    for (int s = 0; s < slices; s++) {
        int start = (int) ((long) rows * s / slices), end = (int) ((long) rows * (s + 1) / slices);
        if (type == AYA_WEIGHT_F32) aya_matmul_f32_f32(w, x, out, tokens, in_dim, out_stride, start, end);
        else if (type == AYA_WEIGHT_F16) aya_matmul_f16_f32(w, x, out, tokens, in_dim, out_stride, start, end);
        else aya_matmul_bf16_f32(w, x, out, tokens, in_dim, out_stride, start, end);
    }
}

static double abs_dot(int type, const void *w, const float *x, int r, int t, int in_dim) {
    double s = 0;
    for (int i = 0; i < in_dim; i++) {
        size_t k = (size_t) r * in_dim + i;
        float wv;
        if (type == AYA_WEIGHT_F32) wv = ((const float *) w)[k];
        else {
            float tmp;
            if (type == AYA_WEIGHT_F16) aya_embed_f16_f32((const uint16_t *) w + k, 0, 1, &tmp);
            else aya_embed_bf16_f32((const uint16_t *) w + k, 0, 1, &tmp);
            wv = tmp;
        }
        s += fabs((double) wv * x[(size_t) t * in_dim + i]);
    }
    return s;
}

static void test_against_scalar(const char *isa) {
    static const int dims[][3] = { /* rows, in_dim, tokens */
        { 1, 1, 1 }, { 3, 7, 1 }, { 5, 8, 2 }, { 7, 17, 3 }, { 33, 255, 1 }, { 19, 256, 5 }, { 21, 300, 4 },
        { 64, 2048, 1 }, { 37, 2048, 7 }, { 4, 16, 64 }, { 50, 513, 9 }, { 6, 40, 1 }, { 130, 600, 13 },
        /* the packed prefill GEMM: token counts that split into tiles of 6 and 5 (23, 29) or leave a short tile (8,
         * 19), more tokens than one block (300), row ranges that end inside a panel or block, inputs that end inside
         * a k block, or inside a vector */
        { 150, 777, 23 }, { 17, 40, 300 }, { 33, 520, 19 }, { 64, 256, 8 }, { 96, 1030, 29 }, { 71, 9, 12 },
        { 75, 1000, 1 }, /* decode with the next rows prefetched (more than 64 KiB of rows) and a tail of rows */
    };
    const char *type_names[3] = { "f32", "f16", "bf16" };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int rows = dims[d][0], in_dim = dims[d][1], tokens = dims[d][2];
        int out_stride = rows + 3; /* a wider output row than the slice, as in a fused projection */
        size_t n = (size_t) rows * in_dim;
        float *x = random_floats((size_t) tokens * in_dim, -1.0f, 1.0f);
        for (int type = 0; type < 3; type++) {
            void *w = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                             : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
            size_t out_n = (size_t) tokens * out_stride;
            float *want = calloc(out_n, sizeof(float)), *got = calloc(out_n, sizeof(float)),
                  *sliced = calloc(out_n, sizeof(float));
            if (!use_isa("scalar")) return;
            run_matmul(type, w, x, want, tokens, in_dim, out_stride, rows, 1);
            if (!use_isa(isa)) return;
            run_matmul(type, w, x, got, tokens, in_dim, out_stride, rows, 1);
            run_matmul(type, w, x, sliced, tokens, in_dim, out_stride, rows, 3);
            int bad = 0;
            for (int t = 0; t < tokens && bad < 3; t++) {
                for (int r = 0; r < rows && bad < 3; r++) {
                    size_t o = (size_t) t * out_stride + r;
                    double scale = abs_dot(type, w, x, r, t, in_dim);
                    if (!close_enough(got[o], want[o], scale, 2e-6 * sqrt((double) in_dim) + 1e-6, 1e-30)) {
                        bad++;
                        CHECK(0, "%s %s matmul %dx%d tokens %d: out[%d][%d] = %.9g, scalar %.9g", isa, type_names[type],
                              rows, in_dim, tokens, t, r, got[o], want[o]);
                    }
                    /* how the rows are split over threads must not change any bit */
                    if (sliced[o] != got[o]) {
                        bad++;
                        CHECK(0, "%s %s matmul %dx%d tokens %d: 3 slices give %.9g, one call %.9g", isa,
                              type_names[type], rows, in_dim, tokens, sliced[o], got[o]);
                    }
                }
                for (int r = rows; r < out_stride; r++) {
                    CHECK(got[(size_t) t * out_stride + r] == 0.0f, "%s matmul wrote outside its rows", isa);
                }
            }
            free(w); free(want); free(got); free(sliced);
        }
        free(x);
    }
}

/* A step of up to AYA_MV_FEW_TOKENS tokens (a batch of decoding sequences) gives every token's outputs bit for bit as
 * the token alone: batching never changes a sequence's logits. */
static void test_few_tokens_as_alone(const char *isa) {
    static const int dims[][2] = { { 13, 300 }, { 75, 1000 }, { 6, 40 }, { 9, 17 } }; /* rows, in_dim: tails, prefetch */
    const char *type_names[3] = { "f32", "f16", "bf16" };
    if (!use_isa(isa)) return;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int rows = dims[d][0], in_dim = dims[d][1], out_stride = rows + 1;
        float *x = random_floats((size_t) AYA_MV_FEW_TOKENS * in_dim, -1.0f, 1.0f);
        for (int type = 0; type < 3; type++) {
            size_t n = (size_t) rows * in_dim;
            void *w = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                             : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
            float *alone = calloc(rows, sizeof(float));
            float *batch = calloc((size_t) AYA_MV_FEW_TOKENS * out_stride, sizeof(float));
            for (int tokens = 2; tokens <= AYA_MV_FEW_TOKENS; tokens++) {
                run_matmul(type, w, x, batch, tokens, in_dim, out_stride, rows, 2);
                for (int t = 0; t < tokens; t++) {
                    run_matmul(type, w, x + (size_t) t * in_dim, alone, 1, in_dim, rows, rows, 1);
                    for (int r = 0; r < rows; r++) {
                        float got = batch[(size_t) t * out_stride + r];
                        if (memcmp(&got, &alone[r], 4) != 0) {
                            CHECK(0, "%s %s %dx%d: token %d of %d gives %.9g, alone %.9g", isa, type_names[type], rows,
                                  in_dim, t, tokens, got, alone[r]);
                            r = rows; t = tokens;
                        }
                    }
                }
            }
            free(w); free(alone); free(batch);
        }
        free(x);
    }
}

/* Weights at every offset from a cache line (mmapped tensors sit anywhere: the real files put them 32 or 56 bytes past
 * one): the decode loop starts its aligned steps after a head of inputs, which must change nothing but the rounding,
 * and a step of several tokens must still give each token's outputs bit for bit as alone. */
static void test_weight_offsets(const char *isa) {
    enum { ROWS = 9, IN = 256, TOKENS = 3 };
    const char *type_names[3] = { "f32", "f16", "bf16" };
    float *x = random_floats((size_t) TOKENS * IN, -1.0f, 1.0f);
    for (int type = 0; type < 3; type++) {
        size_t wsize = type == AYA_WEIGHT_F32 ? 4 : 2, n = (size_t) ROWS * IN;
        void *src = type == AYA_WEIGHT_F32 ? (void *) random_floats(n, -2.0f, 2.0f)
                                           : (void *) random_weights16(n, type == AYA_WEIGHT_F16);
        char *buffer = aligned_alloc(64, (n * wsize + 128 + 63) / 64 * 64);
        float want[TOKENS * ROWS], batch[TOKENS * ROWS], alone[ROWS];
        if (!use_isa("scalar")) return;
        run_matmul(type, src, x, want, TOKENS, IN, ROWS, ROWS, 1);
        if (!use_isa(isa)) return;
        for (size_t offset = 0; offset < 64; offset += wsize) {
            void *w = buffer + offset;
            memcpy(w, src, n * wsize);
            run_matmul(type, w, x, batch, TOKENS, IN, ROWS, ROWS, 1);
            for (int t = 0; t < TOKENS; t++) {
                run_matmul(type, w, x + (size_t) t * IN, alone, 1, IN, ROWS, ROWS, 2);
                for (int r = 0; r < ROWS; r++) {
                    float got = batch[t * ROWS + r];
                    double scale = abs_dot(type, src, x, r, t, IN);
                    CHECK(close_enough(got, want[t * ROWS + r], scale, 2e-6 * sqrt((double) IN) + 1e-6, 1e-30),
                          "%s %s at offset %zu: out[%d][%d] = %.9g, scalar %.9g", isa, type_names[type], offset, t, r,
                          got, want[t * ROWS + r]);
                    CHECK(memcmp(&got, &alone[r], 4) == 0, "%s %s at offset %zu: token %d of %d gives %.9g, alone %.9g",
                          isa, type_names[type], offset, t, TOKENS, got, alone[r]);
                }
            }
        }
        free(buffer); free(src);
    }
    free(x);
}

static void test_embed_against_scalar(const char *isa) {
    int rows = 5, dim = 37;
    for (int f16 = 0; f16 < 2; f16++) {
        uint16_t *table = random_weights16((size_t) rows * dim, f16);
        float want[37], got[37];
        if (!use_isa("scalar")) return;
        if (f16) aya_embed_f16_f32(table, 3, dim, want); else aya_embed_bf16_f32(table, 3, dim, want);
        if (!use_isa(isa)) return;
        if (f16) aya_embed_f16_f32(table, 3, dim, got); else aya_embed_bf16_f32(table, 3, dim, got);
        for (int i = 0; i < dim; i++) CHECK(memcmp(&got[i], &want[i], 4) == 0, "%s embed %s[%d] = %g, scalar %g", isa, f16 ? "f16" : "bf16", i, got[i], want[i]);
        free(table);
    }
}

int main(void) {
    if (!use_isa("scalar")) return 1;
    test_hand_computed();
    for (int i = 0; i < SIMD_ISA_COUNT; i++) {
        if (!aya_isa_available(simd_isas[i])) {
            printf("%s: not available here, skipped\n", simd_isas[i]);
            continue;
        }
        if (!use_isa(simd_isas[i])) continue;
        test_hand_computed();
        test_against_scalar(simd_isas[i]);
        test_few_tokens_as_alone(simd_isas[i]);
        test_weight_offsets(simd_isas[i]);
        test_embed_against_scalar(simd_isas[i]);
        printf("%s: compared with scalar\n", simd_isas[i]);
    }
    return finish("test_matmul");
}
