/* AVX2 Q5_0 / Q4_K / Q6_K matrix products (vpmaddubsw + vpmaddwd): the shared x86 code of kquant_x86.h (the row
 * kernels, named *_avx2rows here), and from AYA_QUAD_MIN_TOKENS_K tokens on Q4_K / Q6_K packed (quant_avx2.c). */
#include <immintrin.h>

#define KQ_VNNI 0
/* decode: each of the four row streams prefetched 1 KiB ahead (Zen 3, one thread from memory: level with 512 B, ahead
 * on Q6_K's long shapes, the Q4_0 and bf16 decodes' distance; performance-native.md section 22) */
#define KQ_DECODE_AHEAD 1024
#define KQ_FN(name) name##_avx2rows
#include "kquant_x86.h"

void aya_matmul_q5_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_matmul_q5_0_avx2rows(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_k_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    (tokens >= AYA_QUAD_MIN_TOKENS_K ? aya_matmul_q4_k_avx2quad : aya_matmul_q4_k_avx2rows)(
        w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q6_k_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end) {
    (tokens >= AYA_QUAD_MIN_TOKENS_K ? aya_matmul_q6_k_avx2quad : aya_matmul_q6_k_avx2rows)(
        w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

const aya_kquant_table aya_kquant_avx2 = {aya_matmul_q5_0_avx2, aya_matmul_q4_k_avx2, aya_matmul_q6_k_avx2};
