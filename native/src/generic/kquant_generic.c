/* GGUF Q5_0 / Q4_K / Q6_K weight matrices times f32 activations, portable scalar code: the reference the ISA versions
 * are tested against, with llama.cpp's numerics (ggml-quants.c). Q5_0 takes the activations quantized to Q8_0 (as
 * Q8_0 / Q4_0 do); Q4_K and Q6_K take them quantized to Q8_K (quantize_row_q8_K_ref). Within a block every product and
 * sum is an exact integer; each block adds its integer dot times d_w * d_x to an f32 sum. The Java backend
 * (aya.kernels.KQuant) computes the same integers. */
#include <math.h>

#include "kquant.h"

/* llama.cpp's nearest_int: round half to even through the f32 adder (|v| < 2^22). */
static int nearest_int(float v) {
    float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

int aya_quantize_activations_q8_k(const float *x, int32_t tokens, int32_t in_dim, aya_q8k_acts *acts) {
    /* A decode matmul comes in pieces (several per thread) and matrices share their input (q/k/v, gate/up): the
     * calling thread keeps its last quantization while x's bytes are the same (only this function writes
     * these buffers; ~1.7 us per call of 2048 inputs, 9.5 us of 11008, against 3-60 us for a decode piece). */
    static _Thread_local struct { size_t n; int valid; } last; /* (blocks of 256: only n matters, not the shape) */
    size_t n = (size_t) tokens * (size_t) in_dim;
    size_t blocks = n / AYA_QK_K;
    int8_t *q = aya_scratch(AYA_SCRATCH_Q8K_VALUES, n + 64);
    float *scales = aya_scratch(AYA_SCRATCH_Q8K_SCALES, (blocks + 1) * sizeof(float));
    int16_t *sums = aya_scratch(AYA_SCRATCH_Q8K_SUMS, (n / 16 + 16) * sizeof(int16_t));
    if (q == NULL || scales == NULL || sums == NULL) return -1;
    acts->q = q;
    acts->d = scales;
    acts->bsum = sums;
    float *source = tokens <= AYA_Q8K_REUSE_TOKENS ? aya_scratch(AYA_SCRATCH_Q8K_SOURCE, n * sizeof(float)) : NULL;
    if (source != NULL && last.valid && last.n == n && memcmp(source, x, n * sizeof(float)) == 0) return 0;
    last.valid = 0;
    for (size_t b = 0; b < blocks; b++) {
        const float *xb = x + b * AYA_QK_K;
        int8_t *qb = q + b * AYA_QK_K;
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < AYA_QK_K; j++) {
            if (fabsf(xb[j]) > amax) { /* strictly greater: the first of equal magnitudes, with its sign */
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            scales[b] = 0.0f;
            memset(qb, 0, AYA_QK_K);
        } else {
            float iscale = -127.0f / max;
            for (int j = 0; j < AYA_QK_K; j++) {
                int v = nearest_int(iscale * xb[j]);
                qb[j] = (int8_t) (v < 127 ? v : 127);
            }
            scales[b] = 1.0f / iscale;
        }
        for (int g = 0; g < AYA_QK_K / 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += qb[g * 16 + j];
            sums[b * (AYA_QK_K / 16) + g] = (int16_t) sum;
        }
    }
    if (source != NULL) {
        memcpy(source, x, n * sizeof(float));
        last.n = n;
        last.valid = 1;
    }
    return 0;
}

/* The 32 values of a Q5_0 block, before the scale: nibble | 5th bit << 4, minus 16. */
static void unpack_q5_0(const uint8_t *blk, int8_t *v) {
    uint32_t high = (uint32_t) blk[2] | (uint32_t) blk[3] << 8 | (uint32_t) blk[4] << 16 | (uint32_t) blk[5] << 24;
    for (int j = 0; j < 16; j++) {
        v[j] = (int8_t) (((blk[6 + j] & 0x0F) | (((high >> j) & 1u) << 4)) - 16);
        v[j + 16] = (int8_t) (((blk[6 + j] >> 4) | (((high >> (j + 16)) & 1u) << 4)) - 16);
    }
}

/* The 256 4-bit values of a Q4_K super-block: 32-byte group g holds sub-block 2g in its low nibbles, 2g + 1 high. */
static void unpack_q4_k(const uint8_t *blk, uint8_t *v) {
    const uint8_t *qs = blk + 16;
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            v[64 * g + l] = qs[32 * g + l] & 0x0F;
            v[64 * g + 32 + l] = qs[32 * g + l] >> 4;
        }
    }
}

/* The 256 values of a Q6_K super-block, before the scales: per half of 128, element l + 32k takes its low 4 bits from
 * ql (k = 0, 1: low nibbles of bytes l, l + 32; k = 2, 3: their high nibbles) and bits 2k..2k+1 of qh[l], minus 32. */
static void unpack_q6_k(const uint8_t *blk, int8_t *v) {
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
        int8_t *y = v + 128 * half;
        for (int l = 0; l < 32; l++) {
            y[l] = (int8_t) (((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32);
            y[l + 32] = (int8_t) (((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = (int8_t) (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = (int8_t) (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

void aya_dequantize_kquant(int type, const void *row, int32_t n, float *out) {
    const uint8_t *blk = row;
    if (type == AYA_WEIGHT_Q5_0) {
        for (int32_t b = 0; b < n / AYA_QK; b++, blk += AYA_Q5_0_BYTES, out += AYA_QK) {
            int8_t v[AYA_QK];
            unpack_q5_0(blk, v);
            float d = aya_f16_to_f32(aya_load_u16(blk));
            for (int j = 0; j < AYA_QK; j++) out[j] = v[j] * d;
        }
    } else if (type == AYA_WEIGHT_Q4_K) {
        for (int32_t b = 0; b < n / AYA_QK_K; b++, blk += AYA_Q4_K_BYTES, out += AYA_QK_K) {
            uint8_t v[AYA_QK_K];
            unpack_q4_k(blk, v);
            float d = aya_f16_to_f32(aya_load_u16(blk)), dmin = aya_f16_to_f32(aya_load_u16(blk + 2));
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                aya_q4_k_scale_min(blk + 4, j, &sc, &m);
                float scale = d * sc, offset = dmin * m; /* as ggml: d * sc * q - dmin * m */
                for (int l = 0; l < 32; l++) out[32 * j + l] = scale * v[32 * j + l] - offset;
            }
        }
    } else if (type == AYA_WEIGHT_Q6_K) {
        for (int32_t b = 0; b < n / AYA_QK_K; b++, blk += AYA_Q6_K_BYTES, out += AYA_QK_K) {
            int8_t v[AYA_QK_K];
            unpack_q6_k(blk, v);
            float d = aya_f16_to_f32(aya_load_u16(blk + 208));
            const int8_t *sc = (const int8_t *) (blk + 192);
            for (int j = 0; j < AYA_QK_K; j++) out[j] = d * sc[j / 16] * v[j];
        }
    }
}

/* Q5_0 row . one token's Q8_0 activations. */
static float dot_q5_0(const uint8_t *row, const aya_q8_acts *acts, size_t token, int32_t in_dim) {
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * (in_dim / AYA_QK);
    float sum = 0.0f;
    for (int32_t b = 0; b < in_dim / AYA_QK; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q5_0_BYTES;
        int8_t v[AYA_QK];
        unpack_q5_0(blk, v);
        int32_t dot = 0;
        for (int j = 0; j < AYA_QK; j++) dot += v[j] * xq[b * AYA_QK + j];
        sum += (float) dot * (aya_f16_to_f32(aya_load_u16(blk)) * xd[b]);
    }
    return sum;
}

/* Q4_K row . one token's Q8_K activations: per super-block d_w * d_x * sum(scale_j * dot_j)
 * - dmin_w * d_x * sum(min_j * sum of the token's q over sub-block j). */
static float dot_q4_k(const uint8_t *row, const aya_q8k_acts *acts, size_t token, int32_t in_dim) {
    int32_t blocks = in_dim / AYA_QK_K;
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * blocks;
    const int16_t *xs = acts->bsum + token * (in_dim / 16);
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q4_K_BYTES;
        uint8_t v[AYA_QK_K];
        unpack_q4_k(blk, v);
        int32_t dots = 0, mins = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            aya_q4_k_scale_min(blk + 4, j, &sc, &m);
            int32_t dot = 0;
            for (int l = 0; l < 32; l++) dot += v[32 * j + l] * xq[b * AYA_QK_K + 32 * j + l];
            dots += sc * dot;
            mins += m * (xs[b * 16 + 2 * j] + xs[b * 16 + 2 * j + 1]);
        }
        float d = aya_f16_to_f32(aya_load_u16(blk)) * xd[b], dmin = aya_f16_to_f32(aya_load_u16(blk + 2)) * xd[b];
        sum += d * (float) dots - dmin * (float) mins;
    }
    return sum;
}

/* Q6_K row . one token's Q8_K activations: per super-block d_w * d_x * sum(scale_g * dot_g) over groups of 16. */
static float dot_q6_k(const uint8_t *row, const aya_q8k_acts *acts, size_t token, int32_t in_dim) {
    int32_t blocks = in_dim / AYA_QK_K;
    const int8_t *xq = acts->q + token * in_dim;
    const float *xd = acts->d + token * blocks;
    float sum = 0.0f;
    for (int32_t b = 0; b < blocks; b++) {
        const uint8_t *blk = row + (size_t) b * AYA_Q6_K_BYTES;
        const int8_t *sc = (const int8_t *) (blk + 192);
        int8_t v[AYA_QK_K];
        unpack_q6_k(blk, v);
        int32_t dots = 0;
        for (int g = 0; g < 16; g++) {
            int32_t dot = 0;
            for (int l = 0; l < 16; l++) dot += v[16 * g + l] * xq[b * AYA_QK_K + 16 * g + l];
            dots += sc[g] * dot;
        }
        sum += aya_f16_to_f32(aya_load_u16(blk + 208)) * xd[b] * (float) dots;
    }
    return sum;
}

static void matmul_q5_0_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8_acts acts;
    if (aya_quantize_activations(x, tokens, in_dim, &acts) != 0) return; /* out of memory: no error channel */
    AYA_KQUANT_MATMUL(dot_q5_0, AYA_Q5_0_BYTES, AYA_QK)
}

static void matmul_q4_k_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    AYA_KQUANT_MATMUL(dot_q4_k, AYA_Q4_K_BYTES, AYA_QK_K)
}

static void matmul_q6_k_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_q8k_acts acts;
    if (aya_quantize_activations_q8_k(x, tokens, in_dim, &acts) != 0) return;
    AYA_KQUANT_MATMUL(dot_q6_k, AYA_Q6_K_BYTES, AYA_QK_K)
}

const aya_kquant_table aya_kquant_generic = {matmul_q5_0_generic, matmul_q4_k_generic, matmul_q6_k_generic};
