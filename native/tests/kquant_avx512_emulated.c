/* The AVX512-VNNI k-quant kernels (kquant_avx512.c) on SIMDe's emulated intrinsics, for test_kquant_emulated: on CPUs
 * without AVX512-VNNI this is the only way that code runs. Exported as aya_matmul_*_avx512vnni_emulated. */
#define aya_matmul_q5_0_avx512vnni aya_matmul_q5_0_avx512vnni_emulated
#define aya_matmul_q4_k_avx512vnni aya_matmul_q4_k_avx512vnni_emulated
#define aya_matmul_q6_k_avx512vnni aya_matmul_q6_k_avx512vnni_emulated
#define AYA_EMULATE_AVX512
#include "simde_avx512.h" /* (with the intrinsics SIMDe lacks) */
#include "../src/x86/kquant_avx512.c"
