/* The public entry points: one pointer table, chosen once by aya_init from the CPU's features (or AYA_ISA). */
#include <stdio.h>
#include <stdlib.h>

#include "bf16act.h"
#include "kernels_internal.h"
#include "kquant.h"

/* Scalar until aya_init runs, so a forgotten init is slow, never wrong. */
static const aya_kernel_table *active = &aya_table_generic;
/* aya_matmul_bf16_bf16 with a bf16 dot-product instruction (AYA_ISA=avx512bf16), else NULL: the active table's bf16
 * matmul on activations rounded to bf16 (same numerics, no speed-up). */
static aya_matmul_fn active_bf16_bf16 = NULL;
static char last_error[256];
/* The Q5_0 / Q4_K / Q6_K kernels of the active table's ISA (kquant_*.c). */
static const aya_kquant_table *active_kquant = &aya_kquant_generic;

static const aya_kquant_table *kquant_for(const aya_kernel_table *table) {
#if defined(__x86_64__)
    if (table == &aya_table_avx2) return &aya_kquant_avx2;
    if (table == &aya_table_avx512) return &aya_kquant_avx512;
#endif
#if defined(__aarch64__)
    if (table == &aya_table_neon) return &aya_kquant_neon;
#endif
    (void) table;
    return &aya_kquant_generic;
}

/* The table for an ISA name, or NULL with *status set. */
static const aya_kernel_table *table_for(const char *name, int32_t *status) {
    *status = AYA_OK;
    if (strcmp(name, "scalar") == 0) {
        return &aya_table_generic;
    }
    if (strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0 || strcmp(name, "avx512bf16") == 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        if (name[3] == '2') {
            if (avx2) return &aya_table_avx2;
        } else if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                   && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
                   && (name[6] == '\0' || __builtin_cpu_supports("avx512bf16"))) {
            return &aya_table_avx512; /* avx512bf16: the same table, plus the vdpbf16ps matmul (select_isa) */
        }
        *status = AYA_ERR_CPU_LACKS;
        return NULL;
#else
        *status = AYA_ERR_NOT_BUILT;
        return NULL;
#endif
    }
    if (strcmp(name, "neon") == 0) {
#if defined(__aarch64__)
        return &aya_table_neon; /* Advanced SIMD is part of every AArch64 CPU */
#else
        *status = AYA_ERR_NOT_BUILT;
        return NULL;
#endif
    }
    *status = AYA_ERR_UNKNOWN_ISA;
    return NULL;
}

static const char *best_isa(void) {
    static const char *const preference[] = { "avx512bf16", "avx512", "avx2", "neon" };
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
        int32_t status;
        if (table_for(preference[i], &status) != NULL) return preference[i];
    }
    return "scalar";
}

/* Switches to the named ISA; on failure last_error explains why, after `origin` (e.g. "AYA_ISA=x: "). */
static int32_t select_isa(const char *name, const char *origin) {
    if (name == NULL || strcmp(name, "auto") == 0) {
        name = best_isa();
    }
    int32_t status;
    const aya_kernel_table *table = table_for(name, &status);
    switch (status) {
    case AYA_OK:
        active = table;
        active_kquant = kquant_for(table);
#if defined(__x86_64__)
        active_bf16_bf16 = strcmp(name, "avx512bf16") == 0 ? aya_matmul_bf16_bf16_avx512bf16 : NULL;
#endif
        last_error[0] = '\0';
        break;
    case AYA_ERR_UNKNOWN_ISA:
        snprintf(last_error, sizeof last_error, "%sunknown ISA '%.64s' (expected scalar, avx2, avx512, avx512bf16, neon or auto)", origin, name);
        break;
    case AYA_ERR_NOT_BUILT:
        snprintf(last_error, sizeof last_error, "%sISA '%.64s' is not built into this library (other CPU architecture)", origin, name);
        break;
    default:
        snprintf(last_error, sizeof last_error, "%sthis CPU does not support ISA '%.64s'", origin, name);
        break;
    }
    return status;
}

int32_t aya_set_isa(const char *name) {
    return select_isa(name, "");
}

int32_t aya_init(void) {
    const char *forced = getenv("AYA_ISA");
    if (forced == NULL || forced[0] == '\0') {
        return select_isa("auto", "");
    }
    char origin[80];
    snprintf(origin, sizeof origin, "AYA_ISA=%.64s: ", forced);
    return select_isa(forced, origin);
}

const char *aya_isa_name(void) {
    return active_bf16_bf16 != NULL ? "avx512bf16" : active->isa;
}

const char *aya_last_error(void) {
    return last_error;
}

int32_t aya_isa_available(const char *name) {
    int32_t status;
    return name != NULL && table_for(name, &status) != NULL;
}

void aya_matmul_f32_f32(const float *w, const float *x, float *out,
                        int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active->matmul[AYA_WEIGHT_F32](w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_f16_f32(const uint16_t *w, const float *x, float *out,
                        int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active->matmul[AYA_WEIGHT_F16](w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_bf16_f32(const uint16_t *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active->matmul[AYA_WEIGHT_BF16](w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_bf16_bf16(const uint16_t *w, const float *x, float *out,
                          int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    if (active_bf16_bf16 != NULL) {
        active_bf16_bf16(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
    } else {
        aya_matmul_bf16_bf16_rounded(active->matmul[AYA_WEIGHT_BF16], w, x, out, tokens, in_dim, out_stride,
                                     row_start, row_end);
    }
}

void aya_matmul_q8_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active->matmul[AYA_WEIGHT_Q8_0](w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active->matmul[AYA_WEIGHT_Q4_0](w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q5_0_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active_kquant->q5_0(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q4_k_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active_kquant->q4_k(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_matmul_q6_k_f32(const void *w, const float *x, float *out,
                         int32_t tokens, int32_t in_dim, int32_t out_stride, int32_t row_start, int32_t row_end) {
    active_kquant->q6_k(w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

void aya_embed_f32_f32(const float *table, int64_t row, int32_t dim, float *out) {
    active->embed[AYA_WEIGHT_F32](table, row, dim, out);
}

void aya_embed_f16_f32(const uint16_t *table, int64_t row, int32_t dim, float *out) {
    active->embed[AYA_WEIGHT_F16](table, row, dim, out);
}

void aya_embed_bf16_f32(const uint16_t *table, int64_t row, int32_t dim, float *out) {
    active->embed[AYA_WEIGHT_BF16](table, row, dim, out);
}

void aya_layernorm_f32(const float *x, const float *weight, float *out, int32_t tokens, int32_t dim, float eps) {
    active->layernorm(x, weight, out, tokens, dim, eps);
}

void aya_rope_interleaved_f32(float *vec, int32_t tokens, int32_t heads, int32_t head_dim, int32_t pos0,
                              const float *cos, const float *sin) {
    active->rope_interleaved(vec, tokens, heads, head_dim, pos0, cos, sin);
}

void aya_attention_f32(const float *q, const float *k_cache, const float *v_cache, float *out,
                       int32_t tokens, int32_t pos0, int32_t heads, int32_t kv_heads, int32_t head_dim,
                       int32_t capacity, int32_t window, float scale, float *scratch,
                       int32_t item_start, int32_t item_end) {
    active->attention(q, k_cache, v_cache, out, tokens, pos0, heads, kv_heads, head_dim, capacity, window, scale,
                      scratch, item_start, item_end);
}

void aya_swiglu_f32(float *gate, const float *up, int64_t start, int64_t end) {
    active->swiglu(gate, up, start, end);
}

void aya_softmax_f32(float *x, int32_t n) {
    active->softmax(x, n);
}
