/* bf16 activations without a bf16 dot-product instruction: round x to bf16, then the f32 path. A product of two bf16
 * values has at most 16 significant bits, so it is exact in f32 (FMA or not): only the summation order can differ
 * from AVX512_BF16's vdpbf16ps. */
#include <stdlib.h>

#include "bf16act.h"

/* x [tokens, in_dim] rounded to bf16 and widened back to f32, in the calling thread's scratch
 * (native/src/scratch.c). NULL if memory runs out. */
static float *round_activations(const float *x, int32_t tokens, int32_t in_dim) {
    size_t n = (size_t) tokens * (size_t) in_dim;
    float *rounded = aya_scratch(AYA_SCRATCH_BF16_X, n * sizeof(float));
    if (rounded == NULL) return NULL;
    for (size_t i = 0; i < n; i++) rounded[i] = aya_bf16_to_f32(aya_f32_to_bf16(x[i]));
    return rounded;
}

void aya_matmul_bf16_bf16_rounded(aya_matmul_fn matmul_bf16_f32, const void *w, const float *x, float *out,
                                  int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (row_start >= row_end) return;
    const float *xr = round_activations(x, tokens, in_dim);
    if (xr == NULL) return;
    matmul_bf16_f32(w, xr, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_bf16_bf16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                  int32_t out_stride, int32_t row_start, int32_t row_end) {
    aya_matmul_bf16_bf16_rounded(aya_matmul_bf16_generic, w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}
