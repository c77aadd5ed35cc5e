/* Internal: the table of kernels one instruction set provides, and the helpers every ISA file shares. */
#ifndef AYA_KERNELS_INTERNAL_H
#define AYA_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aya_kernels.h"

typedef void (*aya_matmul_fn)(const void *w, const float *x, float *out,
                              int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end);
typedef void (*aya_embed_fn)(const void *table, int64_t row, int32_t dim, float *out);

/* One instruction set's kernels. Indexed by enum aya_weight_type where per-type (embed: NULL for Q8_0/Q4_0, which Java dequantizes). */
typedef struct aya_kernel_table {
    const char   *isa;
    aya_matmul_fn matmul[5];
    aya_embed_fn  embed[5];
    void (*layernorm)(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
    void (*rope_interleaved)(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                             const float *cos, const float *sin);
    void (*attention)(const float *q, const float *k_cache, const float *v_cache, float *out,
                      int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                      int32_t capacity, int32_t window, float scale, float *scratch, int32_t item_start, int32_t item_end);
    void (*swiglu)(float *gate, const float *up, int64_t start, int64_t end);
    void (*softmax)(float *x, int32_t n);
} aya_kernel_table;

extern const aya_kernel_table aya_table_generic;
#if defined(__x86_64__) || defined(_M_X64)
extern const aya_kernel_table aya_table_avx2;
extern const aya_kernel_table aya_table_avx512;
#endif
#if defined(__aarch64__)
extern const aya_kernel_table aya_table_neon;
#endif

/* The scalar kernels, reused by ISA tables for ops they do not specialise. */
void aya_matmul_f32_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_f16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_bf16_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_embed_f32_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_embed_f16_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_embed_bf16_generic(const void *table, int64_t row, int32_t dim, float *out);
void aya_layernorm_generic(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps);
void aya_rope_interleaved_generic(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                                  const float *cos, const float *sin);
void aya_attention_generic(const float *q, const float *k_cache, const float *v_cache, float *out,
                           int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                           int32_t capacity, int32_t window, float scale, float *scratch,
                           int32_t item_start, int32_t item_end);
void aya_swiglu_generic(float *gate, const float *up, int64_t start, int64_t end);
void aya_softmax_generic(float *x, int32_t n);

/* ---- quantized weights (GGUF Q8_0 / Q4_0 blocks of 32: fp16 scale, then 32 int8 or 16 bytes of nibbles) ---- */
enum { AYA_QK = 32, AYA_Q8_0_BYTES = 34, AYA_Q4_0_BYTES = 18 };
enum { AYA_Q_ROW_TILE = 16 }; /* weight rows kept hot in L1/L2 while every token of a prefill passes over them */

void aya_matmul_q8_0_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_generic(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                             int32_t out_stride, int32_t row_start, int32_t row_end);
#if defined(__x86_64__) || defined(_M_X64)
void aya_matmul_q8_0_avx512(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_avx512(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                            int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q8_0_avx512vnni(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_avx512vnni(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                                int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q8_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_matmul_q4_0_avx2(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                          int32_t out_stride, int32_t row_start, int32_t row_end);
/* Several tokens of an f32/f16/bf16 matmul (type: enum aya_weight_type), the matmul contract otherwise:
 * gemm_avx2.c and gemm_avx512.c. */
void aya_gemm_avx2(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end);
void aya_gemm_avx512(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                     int32_t out_stride, int32_t row_start, int32_t row_end);
#endif
#if defined(__aarch64__)
/* The same for NEON (arm/gemm_neon.c; tested by test_gemm, not yet called by matmul_neon.c). */
void aya_gemm_neon(int type, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                   int32_t out_stride, int32_t row_start, int32_t row_end);
#endif

/* A matrix of activations quantized to Q8_0, [tokens, in_dim]: values q, per-block scales d (already rounded through
 * fp16) and per-block sums of the 32 values (for the kernels that multiply unsigned weights: Q4_0 nibbles, VNNI). */
typedef struct aya_q8_acts {
    const int8_t *q;
    const float *d;
    const int32_t *sum;
    const void *regrouped; /* the same values in an ISA micro-kernel's own layout (quant_avx512.c), or NULL */
} aya_q8_acts;

/* Quantizes x [tokens, in_dim] (in_dim a multiple of 32) into buffers private to the calling thread, valid until its
 * next call. Returns 0, or -1 if memory runs out. The AVX2 version is bit-exact with the scalar one (test_quant checks),
 * so every ISA quantizes activations identically. */
int aya_quantize_activations(const float *x, int32_t tokens, int32_t in_dim, aya_q8_acts *acts);
#if defined(__x86_64__) || defined(_M_X64)
int aya_quantize_activations_avx2(const float *x, int32_t tokens, int32_t in_dim, aya_q8_acts *acts);
#endif
/* The calling thread's buffers for n activations, grown as needed and kept (Java's pool threads live as long as the
 * process). Returns 0, or -1 if memory runs out. */
int aya_q8_buffers(size_t n, int8_t **q, float **d, int32_t **sum);
/* How many times the calling thread has asked for those buffers: a quantization kept in them (quant_loop.h reuses the
 * last one while x is unchanged) is still there only while this has not moved. */
uint64_t aya_q8_generation(void);
/* The calling thread's AYA_SCRATCH_Q8_REGROUPED buffer (aya_scratch), for a writer: every writer of it asks here, so
 * that aya_q8_regrouped_generation() moves whenever its contents may change (quant_loop.h reuses a decode's regrouped
 * activations, as it reuses their quantization, while this has not moved). */
void *aya_q8_regrouped(size_t bytes);
uint64_t aya_q8_regrouped_generation(void);

/* Per-thread scratch (native/src/scratch.c): a 64-byte aligned buffer of at least `bytes` for `slot`, kept for the
 * thread's next calls and freed when the thread exits; contents are not kept when it grows. NULL if memory runs out. */
enum {
    AYA_SCRATCH_GEMM_X, AYA_SCRATCH_GEMM_W, AYA_SCRATCH_GEMM_C, AYA_SCRATCH_BF16_X, AYA_SCRATCH_SPLIT_X,
    AYA_SCRATCH_Q8_VALUES, AYA_SCRATCH_Q8_SCALES, AYA_SCRATCH_Q8_SUMS, AYA_SCRATCH_Q8_REGROUPED, AYA_SCRATCH_Q8_PANEL,
    AYA_SCRATCH_Q8_SOURCE, AYA_SCRATCH_Q8K_VALUES, AYA_SCRATCH_Q8K_SCALES, AYA_SCRATCH_Q8K_SUMS,
    AYA_SCRATCH_Q8K_SOURCE, AYA_SCRATCH_SLOTS
};
void *aya_scratch(int slot, size_t bytes);

/* Decode (matvec) prefetch distance, in rows, for groups of `group` rows of row_bytes each: whole groups, at least
 * 64 KiB ahead. A bf16 row of 2048 inputs is one 4 KiB page and the hardware prefetchers stop at page boundaries, so
 * every new group of rows would start with cache misses; prefetching ~64 KiB ahead (at the input offset being read)
 * keeps the memory busy across them: 0.98-1.0x of a plain read probe on one thread vs 0.86-0.89x without (AVX2 host,
 * 1 GiB of bf16 rows; native/bench/decode_bench.c). */
/* Up to this many tokens (a step of a few decoding sequences) the matmuls run matvec_loop.h, which widens each step of
 * a group of rows once for several tokens while the rows are in L1/L2, instead of the packed GEMM, whose packing costs
 * more than it saves at so few tokens. Each token's outputs are then bit for bit those of the token alone. */
#define AYA_MV_FEW_TOKENS 8

/* bf16 weights against split activations (matvec_loop.h, aya_mv_split_x): a pseudo weight type of the decode
 * micro-kernels only, read as bf16 everywhere else. */
enum { AYA_BF16_SPLIT = 100 };

static inline int32_t aya_decode_prefetch_rows(size_t row_bytes, int32_t group) {
    size_t group_bytes = (size_t) group * row_bytes;
    return (int32_t) (((64u << 10) + group_bytes - 1) / group_bytes) * group;
}

/* Software prefetch (to L2, or to L1 when to_l1) of the next weight block of a prefill GEMM, rows of lines_per_row
 * cache lines from base, row_bytes apart, spread over the micro-kernel calls of the block before it: those rows are
 * far apart, too many streams for the hardware prefetcher. */
typedef struct { const char *base; size_t row_bytes; int32_t lines_per_row, rows, row, line, to_l1; } aya_block_prefetcher;

static inline void aya_prefetch_some(aya_block_prefetcher *p, int32_t count) {
    for (; count > 0 && p->row < p->rows; count--) {
        const char *line = p->base + (size_t) p->row * p->row_bytes + (size_t) p->line * 64;
        if (p->to_l1) __builtin_prefetch(line, 0, 3); /* x86: prefetcht0 */
        else __builtin_prefetch(line, 0, 2);          /* x86: prefetcht1 */
        if (++p->line == p->lines_per_row) {
            p->line = 0;
            p->row++;
        }
    }
}

static inline uint16_t aya_load_u16(const uint8_t *p) {
    return (uint16_t) (p[0] | (p[1] << 8)); /* little-endian, any alignment */
}

/* f32 to IEEE half, round to nearest even (as GGML_FP32_TO_FP16 and Java's Float.floatToFloat16); overflow gives inf. */
static inline uint16_t aya_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = x & 0x80000000u;
    x ^= sign;
    uint16_t h;
    if (x >= (143u << 23)) {                 /* >= 65536 after rounding range, inf or NaN */
        h = x > (255u << 23) ? 0x7e00 : 0x7c00;
    } else if (x < (113u << 23)) {           /* below 2^-14: f16 subnormal; let an f32 add do the rounding */
        const uint32_t magic_bits = (uint32_t) ((127 - 15) + (23 - 10) + 1) << 23; /* 0.5f: ulp = 2^-24 */
        float v, magic;
        memcpy(&v, &x, sizeof v);
        memcpy(&magic, &magic_bits, sizeof magic);
        v += magic;
        uint32_t r;
        memcpy(&r, &v, sizeof r);
        h = (uint16_t) (r - magic_bits);
    } else {                                 /* normal: rebias and round the 13 dropped bits to nearest even */
        uint32_t odd = (x >> 13) & 1u;
        x += ((uint32_t) (15 - 127) << 23) + 0xfffu + odd;
        h = (uint16_t) (x >> 13);
    }
    return (uint16_t) (h | (sign >> 16));
}

/* bf16 is the top half of an f32: widening is exact. */
static inline float aya_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t) h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE half to f32, exact for every value (normals, subnormals, inf, NaN). */
static inline float aya_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {                 /* inf / NaN */
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {             /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {            /* signed zero */
        bits = sign;
    } else {                           /* subnormal: shift the mantissa up to a normal f32 */
        int e = -1;
        do { mant <<= 1; e++; } while ((mant & 0x400u) == 0);
        bits = sign | ((uint32_t) (112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Keys visible to the query at position pos: [lo, pos]. */
static inline int32_t aya_first_visible_key(int32_t pos, int32_t window) {
    int32_t lo = window > 0 ? pos - window + 1 : 0;
    return lo > 0 ? lo : 0;
}

#endif
