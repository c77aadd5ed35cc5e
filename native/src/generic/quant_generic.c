/* Q8_0 / Q4_0 weight matrices times f32 activations, portable scalar code: the reference the ISA versions are tested
 * against. Like llama.cpp, each token's activations are first quantized to Q8_0 blocks (GGUF's quantize_row_q8_0_ref
 * numerics: d = max|x| / 127, q = roundf(x / d), d stored as fp16), then each block pair is an exact integer dot
 * product scaled by d_w * d_x and summed in f32. The Java backend (aya.kernels.Quant) quantizes identically. */
#include <math.h>
#include <stdlib.h>

#include "kernels_internal.h"

static _Thread_local uint64_t q8_generation;

uint64_t aya_q8_generation(void) {
    return q8_generation;
}

static _Thread_local uint64_t regrouped_generation;

uint64_t aya_q8_regrouped_generation(void) {
    return regrouped_generation;
}

void *aya_q8_regrouped(size_t bytes) {
    regrouped_generation++;
    return aya_scratch(AYA_SCRATCH_Q8_REGROUPED, bytes);
}

int aya_q8_buffers(size_t n, int8_t **q, float **d, int32_t **sum) {
    size_t blocks = n / AYA_QK + 1;
    q8_generation++; /* whatever they held is being replaced */
    int8_t *values = aya_scratch(AYA_SCRATCH_Q8_VALUES, n + 64);
    float *scales = aya_scratch(AYA_SCRATCH_Q8_SCALES, blocks * sizeof(float));
    int32_t *sums = aya_scratch(AYA_SCRATCH_Q8_SUMS, blocks * sizeof(int32_t));
    if (values == NULL || scales == NULL || sums == NULL) return -1;
    *q = values;
    *d = scales;
    *sum = sums;
    return 0;
}

int aya_quantize_activations(const float *x, int32_t tokens, int32_t in_dim, aya_q8_acts *acts) {
    size_t n = (size_t) tokens * (size_t) in_dim;
    int8_t *q;
    float *scales;
    int32_t *sums;
    if (aya_q8_buffers(n, &q, &scales, &sums) != 0) return -1;
    for (size_t b = 0; b < n / AYA_QK; b++) {
        const float *xb = x + b * AYA_QK;
        float amax = 0.0f;
        for (int j = 0; j < AYA_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        scales[b] = aya_f16_to_f32(aya_f32_to_f16(d));
        int32_t sum = 0;
        for (int j = 0; j < AYA_QK; j++) {
            q[b * AYA_QK + j] = (int8_t) roundf(xb[j] * id);
            sum += q[b * AYA_QK + j];
        }
        sums[b] = sum;
    }
    acts->q = q;
    acts->d = scales;
    acts->sum = sums;
    return 0;
}

/* Q8_0 row . one token's quantized activations. */
static float dot_q8_0(const uint8_t *row, const int8_t *xq, const float *xs, int32_t blocks) {
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q8_0_BYTES;
        const int8_t *q = (const int8_t *) (blk + 2);
        int32_t dot = 0;
        for (int j = 0; j < AYA_QK; j++) dot += q[j] * xq[b * AYA_QK + j];
        sum += (float) dot * (aya_f16_to_f32(aya_load_u16(blk)) * xs[b]);
    }
    return sum;
}

/* Q4_0 row . one token's quantized activations: byte j holds element j (low nibble) and j + 16 (high nibble). */
static float dot_q4_0(const uint8_t *row, const int8_t *xq, const float *xs, int32_t blocks) {
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q4_0_BYTES;
        const int8_t *xb = xq + b * AYA_QK;
        int32_t dot = 0;
        for (int j = 0; j < AYA_QK / 2; j++) {
            dot += ((blk[2 + j] & 0x0F) - 8) * xb[j] + ((blk[2 + j] >> 4) - 8) * xb[j + AYA_QK / 2];
        }
        sum += (float) dot * (aya_f16_to_f32(aya_load_u16(blk)) * xs[b]);
    }
    return sum;
}

typedef float (*dot_fn)(const uint8_t *row, const int8_t *xq, const float *xs, int32_t blocks);

static void matmul_quantized(dot_fn dot, size_t block_bytes, const void *w, const float *x, float *out,
                             int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8_acts acts;
    if (aya_quantize_activations(x, tokens, in_dim, &acts) != 0) return; /* out of memory: no error channel */
    const int8_t *xq = acts.q;
    const float *xs = acts.d;
    int32_t blocks = in_dim / AYA_QK;
    size_t row_bytes = (size_t) blocks * block_bytes;
    for (int32_t r0 = row_start; r0 < row_end; r0 += AYA_Q_ROW_TILE) {
        int32_t r1 = r0 + AYA_Q_ROW_TILE < row_end ? r0 + AYA_Q_ROW_TILE : row_end;
        for (int32_t t = 0; t < tokens; t++) {
            for (int32_t r = r0; r < r1; r++) {
                out[(size_t) t * out_stride + r] = dot((const uint8_t *) w + (size_t) r * row_bytes,
                                                       xq + (size_t) t * in_dim, xs + (size_t) t * blocks, blocks);
            }
        }
    }
}

void aya_matmul_q8_0_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end) {
    matmul_quantized(dot_q8_0, AYA_Q8_0_BYTES, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_0_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end) {
    matmul_quantized(dot_q4_0, AYA_Q4_0_BYTES, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
