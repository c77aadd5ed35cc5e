/* AVX2 Q5_0 / Q4_K / Q6_K matrix products (vpmaddubsw + vpmaddwd): the shared x86 code of kquant_x86.h. */
#include <immintrin.h>

#define KQ_VNNI 0
#define KQ_FN(name) name##_avx2
#include "kquant_x86.h"

const aya_kquant_table aya_kquant_avx2 = {aya_matmul_q5_0_avx2, aya_matmul_q4_k_avx2, aya_matmul_q6_k_avx2};
