/* Q5_0 / Q4_K / Q6_K kernels (kquant_*.c) against references made outside this project
 * (src/test/resources/quant/kquant.bin, from src/test/python/make_kquant_fixtures.py):
 *   - aya_dequantize_kquant against gguf-py's dequantizer, bit for bit, on llama.cpp-quantized and crafted edge blocks;
 *   - every ISA's matmul against llama.cpp's own vec_dot (same activation quantization, so only f32 summation order
 *     differs), and within the activation-quantization bound of the exact f32 product;
 *   - every SIMD ISA against scalar on random blocks: several rows and tokens, every token-group remainder, row slices. */
#include "kquant.h"
#include "test_util.h"

#ifndef AYA_KQUANT_FIXTURE
#error "CMakeLists.txt passes the fixture path"
#endif

typedef struct {
    int type;      /* enum aya_weight_type */
    int ggml_type;
    int32_t n, tokens;
    const uint8_t *blocks;
    const float *values, *x, *dots;
} record;

static int aya_type(int ggml_type) {
    return ggml_type == 6 ? AYA_WEIGHT_Q5_0 : ggml_type == 12 ? AYA_WEIGHT_Q4_K : ggml_type == 14 ? AYA_WEIGHT_Q6_K : -1;
}

static size_t row_bytes(int type, int32_t n) {
    return type == AYA_WEIGHT_Q5_0 ? (size_t) n / 32 * 22 : (size_t) n / 256 * (type == AYA_WEIGHT_Q4_K ? 144 : 210);
}

static const aya_matmul_fn *matmul_of(int type) {
    static const aya_matmul_fn fns[3] = { aya_matmul_q5_0_f32, aya_matmul_q4_k_f32, aya_matmul_q6_k_f32 };
    return &fns[type - AYA_WEIGHT_Q5_0];
}

static const char *type_name(int type) {
    return type == AYA_WEIGHT_Q5_0 ? "q5_0" : type == AYA_WEIGHT_Q4_K ? "q4_k" : "q6_k";
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*size + 64);
    if (fread(data, 1, *size, f) != *size) *size = 0;
    fclose(f);
    return data;
}

/* The records of the fixture; the float arrays are copied out so they are aligned. */
static int parse(const uint8_t *data, size_t size, record *out, int max) {
    int count = 0;
    size_t at = 0;
    while (at + 12 <= size && count < max) {
        uint32_t head[3];
        memcpy(head, data + at, 12);
        record r = { aya_type((int) head[0]), (int) head[0], (int32_t) head[1], (int32_t) head[2], NULL, NULL, NULL, NULL };
        if (r.type < 0) return -1;
        at += 12;
        size_t wb = row_bytes(r.type, r.n), floats = (size_t) r.n + (size_t) r.tokens * r.n + (size_t) r.tokens;
        if (at + wb + 4 * floats > size) return -1;
        r.blocks = data + at;
        float *f = malloc(4 * floats);
        memcpy(f, data + at + wb, 4 * floats);
        r.values = f;
        r.x = f + r.n;
        r.dots = f + r.n + (size_t) r.tokens * r.n;
        at += wb + 4 * floats;
        out[count++] = r;
    }
    return at == size ? count : -1;
}

static void dequantize_matches_gguf(const record *r) {
    float *got = malloc(4 * (size_t) r->n);
    aya_dequantize_kquant(r->type, r->blocks, r->n, got);
    int bad = 0;
    for (int32_t i = 0; i < r->n && bad < 3; i++) {
        if (memcmp(&got[i], &r->values[i], 4) != 0) {
            bad++;
            CHECK(0, "%s n=%d: value %d dequantizes to %.9g, gguf-py %.9g", type_name(r->type), r->n, i, got[i], r->values[i]);
        }
    }
    free(got);
}

/* The largest |x| of the quantization block holding element i: |x_i - d * q_i| <= that / 254. */
static float block_amax(const float *x, int32_t i, int block) {
    float m = 0.0f;
    for (int32_t j = i / block * block; j < i / block * block + block; j++) m = fmaxf(m, fabsf(x[j]));
    return m;
}

/* The active ISA's kernel on one fixture row: llama.cpp's dot within f32 rounding, and the exact f32 product within
 * the activation-quantization bound. */
static void matmul_matches_llama(const char *isa, const record *r, double *worst_error) {
    float out[8] = { 0 };
    (*matmul_of(r->type))(r->blocks, r->x, out, r->tokens, r->n, 1, 0, 1);
    int act_block = r->type == AYA_WEIGHT_Q5_0 ? 32 : 256;
    for (int32_t t = 0; t < r->tokens; t++) {
        const float *x = r->x + (size_t) t * r->n;
        double exact = 0.0, scale = 0.0, bound = 0.0;
        for (int32_t i = 0; i < r->n; i++) {
            exact += (double) r->values[i] * x[i];
            scale += fabs((double) r->values[i] * x[i]);
            bound += fabs((double) r->values[i]) * block_amax(x, i, act_block) / 254.0;
        }
        /* same integers as llama.cpp; the f32 sums of per-block terms differ in order (each term up to ~scale) */
        CHECK(close_enough(out[t], r->dots[t], scale + bound * 254.0, 3e-6, 1e-30),
              "%s %s n=%d t=%d: %.9g vs llama.cpp %.9g", isa, type_name(r->type), r->n, t, out[t], r->dots[t]);
        CHECK(fabs(out[t] - exact) <= 1.001 * bound + 1e-5 * scale,
              "%s %s n=%d t=%d: %.9g vs exact %.9g, beyond the activation rounding bound %.3g", isa, type_name(r->type),
              r->n, t, out[t], exact, bound);
        if (scale > 0 && fabs(out[t] - exact) / scale > *worst_error) *worst_error = fabs(out[t] - exact) / scale;
    }
}

/* Random blocks with sane f16 scales (f16 in [2^-8, 2^-7), either sign) at every scale field. */
static uint8_t *random_matrix(int type, int32_t rows, int32_t n) {
    size_t bytes = (size_t) rows * row_bytes(type, n);
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t) rng_next();
    size_t block = type == AYA_WEIGHT_Q5_0 ? 22 : type == AYA_WEIGHT_Q4_K ? 144 : 210;
    for (size_t b = 0; b < bytes / block; b++) {
        uint8_t *blk = w + b * block;
        for (int k = 0; k < (type == AYA_WEIGHT_Q4_K ? 2 : 1); k++) {
            uint16_t d = (uint16_t) (0x1c00 | (rng_next() & 0x83ff));
            uint8_t *at = type == AYA_WEIGHT_Q6_K ? blk + 208 : blk + 2 * k;
            at[0] = (uint8_t) d;
            at[1] = (uint8_t) (d >> 8);
        }
    }
    return w;
}

static void simd_matches_scalar(const char *isa, int type) {
    static const int shapes[][3] = { /* tokens, in_dim, rows */
        { 1, 256, 1 }, { 1, 256, 7 }, { 1, 2048, 33 }, { 2, 512, 5 }, { 3, 768, 17 }, { 4, 256, 40 },
        { 5, 1024, 13 }, { 6, 2048, 9 }, { 7, 256, 11 }, { 9, 512, 70 }, { 1, 11008, 5 },
        /* more prefill (AVX512-VNNI: packed from AYA_OCT_MIN_TOKENS_K = 6 on, tiles of 8 tokens x 2 rows; AVX2 from
         * AYA_QUAD_MIN_TOKENS_K = 6 on, tiles of 4 tokens x 1 row): token counts of every remainder mod 8, odd row
         * counts, panels of 64 rows and chunks of 8 super-blocks with remainders */
        { 15, 512, 7 }, { 16, 256, 3 }, { 17, 512, 67 }, { 18, 256, 2 }, { 19, 768, 5 }, { 22, 1024, 9 },
        { 24, 2048, 9 }, { 29, 256, 130 }, { 31, 2304, 66 }, { 36, 512, 4 }, { 40, 11008, 5 }, { 6, 256, 1 },
        { 10, 4352, 65 }, { 13, 6144, 3 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int tokens = shapes[s][0], in_dim = shapes[s][1], rows = shapes[s][2], stride = rows + 2;
        uint8_t *w = random_matrix(type, rows, in_dim);
        float *x = random_floats((size_t) tokens * in_dim, -3, 3);
        float *want = calloc((size_t) tokens * stride, sizeof(float));
        float *got = calloc((size_t) tokens * stride, sizeof(float));
        float *values = malloc(4 * (size_t) in_dim);
        use_isa("scalar");
        (*matmul_of(type))(w, x, want, tokens, in_dim, stride, 0, rows);
        use_isa(isa);
        (*matmul_of(type))(w, x, got, tokens, in_dim, stride, 0, rows / 3);
        (*matmul_of(type))(w, x, got, tokens, in_dim, stride, rows / 3, rows);
        int bad = 0;
        for (int r = 0; r < stride && bad < 3; r++) {
            if (r < rows) aya_dequantize_kquant(type, w + r * row_bytes(type, in_dim), in_dim, values);
            for (int t = 0; t < tokens; t++) {
                float a = want[t * stride + r], b = got[t * stride + r];
                if (r >= rows) {
                    CHECK(b == 0.0f, "%s %s wrote outside its rows", isa, type_name(type));
                    continue;
                }
                double scale = 0.0;
                for (int i = 0; i < in_dim; i++) scale += fabs((double) values[i] * x[(size_t) t * in_dim + i]);
                if (!close_enough(a, b, scale, 3e-6, 1e-30)) {
                    bad++;
                    CHECK(0, "%s %s %dx%dx%d t=%d r=%d: %.9g vs scalar %.9g", isa, type_name(type), tokens, in_dim,
                          rows, t, r, b, a);
                }
            }
        }
        free(w); free(x); free(want); free(got); free(values);
    }
}

/* Decode reuses the thread's last Q8_K quantization while x is unchanged (aya_quantize_activations_q8_k): a changed
 * value (the last one) must be quantized again. `fresh` runs after a 5-token call, which never reuses and drops the
 * kept one. */
static void quantization_reuse_follows_x(const char *isa, int type) {
    enum { N = 512, ROWS = 3 };
    uint8_t *w = random_matrix(type, ROWS, N);
    float *x = random_floats(5 * N, -3, 3), *other = random_floats(5 * N, -3, 3);
    float got[ROWS], fresh[ROWS], five[5 * ROWS];
    use_isa(isa);
    (*matmul_of(type))(w, x, got, 1, N, ROWS, 0, 1); /* rows in two pieces: the second call reuses */
    (*matmul_of(type))(w, x, got, 1, N, ROWS, 1, ROWS);
    (*matmul_of(type))(w, other, five, 5, N, ROWS, 0, ROWS);
    (*matmul_of(type))(w, x, fresh, 1, N, ROWS, 0, ROWS);
    CHECK(memcmp(got, fresh, sizeof(float) * ROWS) == 0, "%s %s: pieces reusing the quantization differ", isa,
          type_name(type));
    x[N - 1] = x[N - 1] > 0 ? -3.0f : 3.0f;
    (*matmul_of(type))(w, x, got, 1, N, ROWS, 0, ROWS);
    (*matmul_of(type))(w, other, five, 5, N, ROWS, 0, ROWS);
    (*matmul_of(type))(w, x, fresh, 1, N, ROWS, 0, ROWS);
    CHECK(memcmp(got, fresh, sizeof(float) * ROWS) == 0, "%s %s: a changed x reused the old quantization", isa,
          type_name(type));
    free(w); free(x); free(other);
}

/* Decode (1 token) passes several rows a part of the slice apart and takes the last few one by one (kquant_x86.h):
 * a matrix cut into pieces of 1, 2, 3, ... rows (taken last first, as a pool's threads may) gives one call's bits. */
static void decode_pieces_match_one_call(const char *isa, int type) {
    enum { N = 512, ROWS = 37 };
    uint8_t *w = random_matrix(type, ROWS, N);
    float *x = random_floats(N, -3, 3);
    float whole[ROWS], pieces[ROWS];
    use_isa(isa);
    (*matmul_of(type))(w, x, whole, 1, N, ROWS, 0, ROWS);
    int ends[ROWS], count = 0;
    for (int end = 0; end < ROWS; count++) {
        end = end + count + 1 < ROWS ? end + count + 1 : ROWS;
        ends[count] = end;
    }
    for (int p = count - 1; p >= 0; p--) (*matmul_of(type))(w, x, pieces, 1, N, ROWS, p > 0 ? ends[p - 1] : 0, ends[p]);
    CHECK(memcmp(whole, pieces, sizeof whole) == 0, "%s %s: decode in pieces differs from one call", isa,
          type_name(type));
    free(w); free(x);
}

int main(void) {
    size_t size = 0;
    uint8_t *data = read_file(AYA_KQUANT_FIXTURE, &size);
    CHECK(data != NULL && size > 0, "cannot read %s", AYA_KQUANT_FIXTURE);
    if (data == NULL) return finish("test_kquant");
    record records[64];
    int count = parse(data, size, records, 64);
    CHECK(count > 0, "malformed fixture %s", AYA_KQUANT_FIXTURE);
    for (int i = 0; i < count; i++) dequantize_matches_gguf(&records[i]);
    const char *isas[] = { "scalar", "avx2", "avx512", "neon" };
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!aya_isa_available(isas[k]) || !use_isa(isas[k])) continue;
        double worst[3] = { 0, 0, 0 };
        for (int i = 0; i < count; i++) matmul_matches_llama(isas[k], &records[i], &worst[records[i].type - AYA_WEIGHT_Q5_0]);
        printf("%s: worst |kernel - exact f32| / sum|w x|: q5_0 %.2e, q4_k %.2e, q6_k %.2e\n", isas[k], worst[0], worst[1],
               worst[2]);
        if (k > 0) {
            for (int type = AYA_WEIGHT_Q5_0; type <= AYA_WEIGHT_Q6_K; type++) {
                simd_matches_scalar(isas[k], type);
                decode_pieces_match_one_call(isas[k], type);
            }
        }
        quantization_reuse_follows_x(isas[k], AYA_WEIGHT_Q4_K);
        quantization_reuse_follows_x(isas[k], AYA_WEIGHT_Q6_K);
    }
    for (int i = 0; i < count; i++) free((void *) records[i].values);
    free(data);
    return finish("test_kquant");
}
