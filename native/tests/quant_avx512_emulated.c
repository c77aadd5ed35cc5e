/* The AVX-512 VNNI quantized kernels on SIMDe's emulated intrinsics, for test_avx512_emulated (a separate file for the
 * same reason as matmul_avx512_emulated.c). Exported as aya_matmul_q*_0_avx512vnni_emulated. */
#define aya_matmul_q8_0_avx512vnni aya_matmul_q8_0_avx512vnni_emulated
#define aya_matmul_q4_0_avx512vnni aya_matmul_q4_0_avx512vnni_emulated
#define aya_matmul_q4_k_avx512oct aya_matmul_q4_k_avx512oct_emulated
#define aya_matmul_q6_k_avx512oct aya_matmul_q6_k_avx512oct_emulated
#define AYA_EMULATE_AVX512
#include "simde_avx512.h" /* (with the intrinsics SIMDe lacks) */
#include "../src/x86/quant_avx512.c"
