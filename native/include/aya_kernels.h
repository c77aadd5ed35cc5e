/*
 * aya_kernels.h: the C kernels behind aya.kernels.Kernels (see its javadoc: it is the contract).
 *
 * Conventions, the same as the Java side:
 *   - activations, norm weights, KV cache and outputs are f32 in native byte order;
 *   - weight matrices are [rows, cols] row-major, read in place (e.g. straight from the mmapped file);
 *   - every kernel is single-threaded and thread-safe: Java owns the threads and hands each call a slice
 *     ([row_start, row_end), [item_start, item_end)); slices of one call never overlap in output;
 *   - sizes are element counts, not bytes.
 * Names follow aya_<op>_<weight type>_<activation type>.
 *
 * aya_init() picks the best instruction set for this CPU once (or the one forced by AYA_ISA=scalar|avx2|avx512|avx512bf16|neon);
 * before it runs, every function uses the portable scalar code.
 */
#ifndef AYA_KERNELS_H
#define AYA_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight storage formats; the values match the order of aya.kernels.WeightType. */
enum aya_weight_type {
    AYA_WEIGHT_F32  = 0,
    AYA_WEIGHT_F16  = 1,
    AYA_WEIGHT_BF16 = 2,
    AYA_WEIGHT_Q8_0 = 3, /* blocks of 32 weights: f16 scale + 32 int8 (GGUF Q8_0) */
    AYA_WEIGHT_Q4_0 = 4, /* blocks of 32 weights: f16 scale + 16 bytes, byte j = element j | element j+16 << 4, offset 8 (GGUF Q4_0) */
    AYA_WEIGHT_Q5_0 = 5, /* blocks of 32 weights: f16 scale, 4 bytes of 5th bits, 16 bytes of nibbles as Q4_0, offset 16 (GGUF Q5_0) */
    AYA_WEIGHT_Q4_K = 6, /* super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles (GGUF Q4_K) */
    AYA_WEIGHT_Q6_K = 7  /* super-blocks of 256: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d (GGUF Q6_K) */
};

/* Result codes of aya_init / aya_set_isa. */
enum aya_status {
    AYA_OK              = 0,
    AYA_ERR_UNKNOWN_ISA = 1, /* the name is not one of scalar, avx2, avx512, avx512bf16, neon */
    AYA_ERR_NOT_BUILT   = 2, /* this library was built without that ISA (other architecture) */
    AYA_ERR_CPU_LACKS   = 3  /* the CPU (or OS) does not support that ISA */
};

/* ---- setup ---- */

/* Selects the kernels: AYA_ISA from the environment if set, else the best this CPU supports. Returns an aya_status. */
int32_t aya_init(void);

/* Forces one instruction set by name ("scalar", "avx2", "avx512", "avx512bf16", "neon"); "auto" picks the best.
 * "avx512bf16" is avx512 plus the vdpbf16ps kernel of aya_matmul_bf16_bf16 (the only function it changes). Returns an aya_status.
 * Meant for tests and benchmarks: do not call while kernels run on other threads. */
int32_t aya_set_isa(const char *name);

/* Name of the instruction set in use, e.g. "avx2" ("avx512bf16" when aya_matmul_bf16_bf16 uses vdpbf16ps). Static storage. */
const char *aya_isa_name(void);

/* One line explaining the last failed aya_init / aya_set_isa (empty when none). Static storage. */
const char *aya_last_error(void);

/* 1 if this library has code for the named ISA and the CPU can run it, else 0. */
int32_t aya_isa_available(const char *name);

/* ---- matrix products: out[t*out_stride + r] = sum_i w[r, i] * x[t*in_dim + i], t < tokens, row_start <= r < row_end ----
 * w is the whole [rows, in_dim] matrix; x is [tokens, in_dim]. tokens == 1 is decode (matrix-vector), tokens > 1 prefill.
 * Activations stay f32: 16-bit weights are widened to f32 exactly, products and sums are f32. */
void aya_matmul_f32_f32(const float *w, const float *x, float *out,
                        int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_f16_f32(const uint16_t *w, const float *x, float *out,
                        int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_bf16_f32(const uint16_t *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);

/* ---- opt-in bf16 activations (aya --activations bf16): BF16 weights times x rounded to bf16, same arguments as
 * aya_matmul_bf16_f32 (x is passed as f32). Numerics, on every ISA:
 *   - each x value is rounded to bf16 as vcvtne2ps2bf16 does: to nearest even; NaN stays NaN (quiet); f32 denormals
 *     become signed zero; overflow gives inf. That rounding (relative error <= 2^-9) is the only change from
 *     aya_matmul_bf16_f32: the product of two bf16 values is exact in f32 and the sums are f32;
 *   - only the order of the f32 sums differs between ISAs. With AVX512_BF16 (vdpbf16ps) each f32 lane sums two k at
 *     a time, and the instruction treats denormal bf16 weights as zero and flushes denormal sums (no trained weight
 *     or sum is near 1e-38).
 * Without AVX512_BF16 this rounds x, then runs the ISA's aya_matmul_bf16_f32 code: same numerics, no speed-up. ---- */
void aya_matmul_bf16_bf16(const uint16_t *w, const float *x, float *out,
                          int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);

/* ---- quantized weights: w is rows of in_dim / 32 blocks (Q8_0: 34 bytes, Q4_0: 18 bytes), in_dim a multiple of 32.
 * Like llama.cpp, each token of x is first quantized to Q8_0 (d = max|x| / 127 rounded to f16, q = roundf(x / d)),
 * then every block pair is an exact integer dot product scaled by d_w * d_x and summed in f32. ---- */
void aya_matmul_q8_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);

/* ---- GGUF k-quant weights (docs/gguf-kernels.md has the layouts): Q5_0 rows of in_dim / 32 blocks of 22 bytes (x
 * quantized to Q8_0 as above); Q4_K (144 bytes) and Q6_K (210 bytes) rows of in_dim / 256 super-blocks, in_dim a multiple
 * of 256, x quantized per token to Q8_K as llama.cpp's quantize_row_q8_K_ref does (per 256 values: d = max / -127 with
 * max the value of largest magnitude, q = round-half-even(x * -127 / max)). Each super-block is an exact integer dot
 * product of the 4/6-bit values and their integer sub-block scales with q, scaled by d_w * d_x (Q4_K: minus
 * dmin_w * d_x * sum(min * block sums of q)), summed in f32. ---- */
void aya_matmul_q5_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_k_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q6_k_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);

/* ---- embedding lookup: out[i] = f32(table[row, i]) for i < dim ---- */
void aya_embed_f32_f32(const float *table, int64_t row, int32_t dim, float *out);
void aya_embed_f16_f32(const uint16_t *table, int64_t row, int32_t dim, float *out);
void aya_embed_bf16_f32(const uint16_t *table, int64_t row, int32_t dim, float *out);

/* ---- bias-free LayerNorm of each of `tokens` rows of x [tokens, dim]: (x - mean) / sqrt(var + eps) * weight,
 * biased variance. out may equal x. ---- */
void aya_layernorm_f32(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);

/* ---- interleaved RoPE in place on vec [tokens, heads, head_dim]: pair (2i, 2i+1) of token t rotates by the angle with
 * cosine cos[(pos0 + t) * head_dim/2 + i] and sine sin[...] (tables [positions, head_dim/2]). ---- */
void aya_rope_interleaved_f32(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                              const float *cos, const float *sin);

/* ---- causal attention over a KV cache, for query tokens t at positions pos0 + t.
 * q and out are [tokens, heads, head_dim]; k_cache and v_cache are [capacity, kv_heads, head_dim], the entry of position p
 * in slot p % capacity (a ring buffer). Query head h reads KV head h / (heads / kv_heads) (GQA). The query at position pos
 * sees keys max(0, pos - window + 1) <= k <= pos; window == 0 means no window. Scores are scaled by `scale`, softmax in f32.
 * Work items are item = t * heads + h; this call computes [item_start, item_end).
 * scratch holds at least capacity floats, private to the calling thread. ---- */
void aya_attention_f32(const float *q, const float *k_cache, const float *v_cache, float *out,
                       int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                       int32_t capacity, int32_t window, float scale, float *scratch,
                       int32_t item_start, int32_t item_end);

/* ---- SwiGLU in place: gate[i] = silu(gate[i]) * up[i] for start <= i < end ---- */
void aya_swiglu_f32(float *gate, const float *up, int64_t start, int64_t end);

/* ---- softmax in place over x[0, n), max-subtracted, f32 ---- */
void aya_softmax_f32(float *x, int32_t n);

/* ==== weight-file guard (native/src/guard.c) ====
 * A weight file truncated on disk while it is mapped makes every read of a lost page raise SIGBUS, which would kill
 * the process (in a kernel, or in the JVM reading the mapping). Registered ranges are guarded: the first such fault
 * maps zero pages over the rest of the range (so the read, and all later ones, return 0 instead of faulting) and
 * marks the range; the caller checks the mark after each forward step and reports the file. Faults anywhere else go
 * to the previous handler (the JVM's). Linux and macOS only; elsewhere aya_guard_add returns -1. */

/* Guards [start, start + bytes); returns a slot >= 0, or -1 (table full, or the handler could not be installed). */
int32_t aya_guard_add(const void *start, int64_t bytes);

/* Stops guarding a slot (before its range is unmapped). */
void aya_guard_remove(int32_t slot);

/* 1 once a read inside the slot's range faulted (its pages from there on read as zeros), else 0. */
int32_t aya_guard_faulted(int32_t slot);

/* ==== memory read probe (native/src/probe.c) ====
 * Sums the 64-bit words of buf[0, bytes) (bytes a multiple of 8), reading as the decode matvec streams weights: four
 * 4 KiB rows at a time with software prefetch ahead (hardware prefetchers stop at each page), which reads faster than
 * one plain sequential loop. `aya bench` times it (next to a plain Java loop) as the read bandwidth that bounds decode. The result
 * only keeps the reads alive. */
uint64_t aya_read_probe(const void *buf, int64_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* AYA_KERNELS_H */
