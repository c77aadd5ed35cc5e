/* AVX512-VNNI Q5_0 / Q4_K / Q6_K matrix products: the shared x86 code of kquant_x86.h with vpdpbusd on 256-bit vectors
 * (AVX512VL), which replaces vpmaddubsw + vpmaddwd. test_avx512_emulated also runs this file on SIMDe. */
#ifdef AYA_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif

#define KQ_VNNI 1
#define KQ_FN(name) name##_avx512vnni
#include "kquant_x86.h"

#ifndef AYA_EMULATE_AVX512
void aya_matmul_q5_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_k_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end);

/* The avx512 table's set: VNNI where the CPU has it (Ice Lake, Zen 4 and later; Q4_K / Q6_K prefill packed as in
 * quant_avx512.c's packed prefill), else the AVX2 kernels. */
static void select_q5_0(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                        int32_t out_stride, int32_t row_start, int32_t row_end) {
    (__builtin_cpu_supports("avx512vnni") ? aya_matmul_q5_0_avx512vnni : aya_matmul_q5_0_avx2)(
        w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

static void select_q4_k(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                        int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_matmul_fn fn = !__builtin_cpu_supports("avx512vnni") ? aya_matmul_q4_k_avx2
                     : tokens >= AYA_OCT_MIN_TOKENS_K ? aya_matmul_q4_k_avx512oct : aya_matmul_q4_k_avx512vnni;
    fn(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

static void select_q6_k(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                        int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_matmul_fn fn = !__builtin_cpu_supports("avx512vnni") ? aya_matmul_q6_k_avx2
                     : tokens >= AYA_OCT_MIN_TOKENS_K ? aya_matmul_q6_k_avx512oct : aya_matmul_q6_k_avx512vnni;
    fn(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

const aya_kquant_table aya_kquant_avx512 = {select_q5_0, select_q4_k, select_q6_k};
#endif
