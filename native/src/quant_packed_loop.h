/* Internal: the quantized prefill driver for packed operands, written once for every ISA that packs (AVX-512's
 * eight-block "oct" layout, AVX2's four-block "quad" one). Both operands are copied into the micro-kernel's own layout
 * first: the activations once per call, the weights per panel of rows and k chunk into the calling thread's scratch
 * (each weight byte once per call). Loop order: k chunks (a tile's tokens' chunk stays in L1), panels of rows (packed;
 * they stay in L2), token tiles, row tiles. The first chunk stores each output, later ones add to it.
 * Q8_0 / Q4_0 pack AYA_P_BLOCKS blocks of 32 per group against Q8_0 activations; an ISA that also packs Q4_K / Q6_K
 * makes one group of each 256-value super-block, against Q8_K activations.
 *
 * Define before including:
 *   AYA_P_BLOCKS        Q8_0 / Q4_0 blocks per packed group (the micro-kernel's step)
 *   AYA_P_W_BYTES       bytes of one row's packed group
 *   AYA_P_X_BYTES       bytes of one token's packed group
 *   AYA_P_ROWS, AYA_P_TOKENS   the register tile (rows x tokens)
 *   AYA_P_CHUNK         groups per k chunk
 *   aya_p_pack_weights(kind, w, row_bytes, rows, blocks, g0, groups, dst)
 *       rows [0, rows) of w (row_bytes apart) x groups [g0, g0 + groups) into dst[row][group]; blocks past `blocks`
 *       are zero with zero scales
 *   aya_p_pack_activations(acts, tokens, blocks, groups, dst)   every token's groups into dst[token][group]
 *   aya_p_tile(kind, RM, RN, w, w_stride, x, x_stride, groups, out, out_stride, accumulate)
 *       out[t * out_stride + r] (= or += per accumulate) the products of RM packed rows (w_stride apart) and RN
 *       packed tokens (x_stride apart) over `groups` groups; RM and RN are compile-time constants at every call
 * and, to pack Q4_K / Q6_K too:
 *   AYA_P_WK_BYTES      bytes of one row's packed super-block
 *   AYA_P_XK_BYTES, AYA_P_CHUNK_K   a token's packed super-block and super-blocks per k chunk (default: AYA_P_X_BYTES,
 *                       AYA_P_CHUNK)
 *   aya_p_pack_activations_k(acts, tokens, groups, dst)     every token's Q8_K super-blocks into dst[token][group]
 * kind is the weights' enum aya_weight_type (Q8_0, Q4_0, and Q4_K / Q6_K where packed).
 * Then aya_p_matmul(kind, w, x, out, tokens, in_dim, out_stride, row_start, row_end) is the aya_matmul_* contract. */
#ifndef AYA_QUANT_PACKED_LOOP_H
#define AYA_QUANT_PACKED_LOOP_H

#include "kquant.h"

enum { AYA_P_PANEL_ROWS = 64 }; /* rows packed at a time: 64 rows x a chunk (2048 inputs) stay in L2 (128: no faster) */

#ifndef AYA_P_WK_BYTES /* an ISA that packs Q8_0 / Q4_0 only */
#define AYA_P_WK_BYTES AYA_P_W_BYTES
#define aya_p_pack_activations_k(acts, tokens, groups, dst) ((void) (acts), (void) (tokens), (void) (groups), (void) (dst))
#endif
#ifndef AYA_P_XK_BYTES
#define AYA_P_XK_BYTES AYA_P_X_BYTES
#endif
#ifndef AYA_P_CHUNK_K
#define AYA_P_CHUNK_K AYA_P_CHUNK
#endif

/* The tile for rm (1..AYA_P_ROWS) rows x rn (1..AYA_P_TOKENS) tokens: from runtime sizes to compile-time ones. */
#define AYA_P_TILE_CASE(RM, RN)                                                                                        \
    case (RM) * 16 + (RN):                                                                                             \
        if ((RM) <= AYA_P_ROWS && (RN) <= AYA_P_TOKENS)                                                                \
            aya_p_tile(kind, RM, RN, w, w_stride, x, x_stride, groups, out, out_stride, accumulate);                   \
        break;
static void aya_p_any_tile(int kind, int rm, int rn, const uint8_t *w, size_t w_stride, const uint8_t *x,
                           size_t x_stride, int32_t groups, float *out, int32_t out_stride, int accumulate) {
    switch (rm * 16 + rn) {
        AYA_P_TILE_CASE(2, 8) AYA_P_TILE_CASE(2, 7) AYA_P_TILE_CASE(2, 6) AYA_P_TILE_CASE(2, 5)
        AYA_P_TILE_CASE(2, 4) AYA_P_TILE_CASE(2, 3) AYA_P_TILE_CASE(2, 2) AYA_P_TILE_CASE(2, 1)
        AYA_P_TILE_CASE(1, 8) AYA_P_TILE_CASE(1, 7) AYA_P_TILE_CASE(1, 6) AYA_P_TILE_CASE(1, 5)
        AYA_P_TILE_CASE(1, 4) AYA_P_TILE_CASE(1, 3) AYA_P_TILE_CASE(1, 2) AYA_P_TILE_CASE(1, 1)
        default: break;
    }
}
#undef AYA_P_TILE_CASE

static void aya_p_matmul(int kind, const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim,
                         int32_t out_stride, int32_t row_start, int32_t row_end) {
    const int k = kind >= AYA_WEIGHT_Q4_K; /* a k-quant: one group per super-block */
    aya_q8_acts acts;
    aya_q8k_acts kacts;
    /* out of memory: no error channel */
    if (k ? aya_quantize_activations_q8_k(x, tokens, in_dim, &kacts) : aya_quantize_activations_avx2(x, tokens, in_dim, &acts)) return;
    const int32_t blocks = in_dim / (k ? AYA_QK_K : AYA_QK), groups = k ? blocks : (blocks + AYA_P_BLOCKS - 1) / AYA_P_BLOCKS;
    const size_t w_bytes = k ? AYA_P_WK_BYTES : AYA_P_W_BYTES, x_bytes = k ? AYA_P_XK_BYTES : AYA_P_X_BYTES;
    const int32_t chunk_groups = k ? AYA_P_CHUNK_K : AYA_P_CHUNK;
    uint8_t *xp = aya_q8_regrouped((size_t) tokens * groups * x_bytes);
    uint8_t *wp = aya_scratch(AYA_SCRATCH_Q8_PANEL, (size_t) AYA_P_PANEL_ROWS * chunk_groups * w_bytes);
    if (xp == NULL || wp == NULL) return;
    if (k) aya_p_pack_activations_k(&kacts, tokens, groups, xp);
    else aya_p_pack_activations(&acts, tokens, blocks, groups, xp);
    const size_t row_bytes = (size_t) blocks * aya_block_bytes(kind);
    const size_t x_stride = (size_t) groups * x_bytes;
    for (int32_t g0 = 0; g0 < groups; g0 += chunk_groups) {
        int32_t chunk = groups - g0 < chunk_groups ? groups - g0 : chunk_groups;
        size_t w_stride = (size_t) chunk * w_bytes;
        for (int32_t p0 = row_start; p0 < row_end; p0 += AYA_P_PANEL_ROWS) {
            int32_t rows = row_end - p0 < AYA_P_PANEL_ROWS ? row_end - p0 : AYA_P_PANEL_ROWS;
            aya_p_pack_weights(kind, (const uint8_t *) w + (size_t) p0 * row_bytes, row_bytes, rows, blocks, g0, chunk,
                               wp);
            for (int32_t t = 0; t < tokens; t += AYA_P_TOKENS) {
                int rn = tokens - t < AYA_P_TOKENS ? tokens - t : AYA_P_TOKENS;
                const uint8_t *xt = xp + (size_t) t * x_stride + (size_t) g0 * x_bytes;
                for (int32_t r = 0; r < rows; r += AYA_P_ROWS) {
                    int rm = rows - r < AYA_P_ROWS ? rows - r : AYA_P_ROWS;
                    aya_p_any_tile(kind, rm, rn, wp + (size_t) r * w_stride, w_stride, xt, x_stride, chunk,
                                   out + (size_t) t * out_stride + p0 + r, out_stride, g0 > 0);
                }
            }
        }
    }
}

#endif
