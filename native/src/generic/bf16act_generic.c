/* bf16 activations without a bf16 dot-product instruction: round x to bf16, then the f32 path. A product of two bf16
 * values has at most 16 significant bits, so it is exact in f32 (FMA or not): only the summation order can differ
 * from AVX512_BF16's vdpbf16ps. */
#include <stdlib.h>

#include "bf16act.h"

/* x [tokens, in_dim] rounded to bf16 and widened back to f32, in a buffer private to the calling thread (grown as
 * needed and kept: Java's pool threads live as long as the process). NULL if memory runs out. */
static float *round_activations(const float *x, int32_t tokens, int32_t in_dim) {
    static _Thread_local float *rounded;
    static _Thread_local size_t capacity;
    size_t n = (size_t) tokens * (size_t) in_dim;
    if (n > capacity) {
        float *grown = realloc(rounded, n * sizeof(float));
        if (grown == NULL) return NULL;
        rounded = grown;
        capacity = n;
    }
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
