// Block layouts (as in GGUF files) and the per-level entry points behind the dispatch in dispatch.c.
#ifndef SWITCHYARD_CKERNELS_INTERNAL_H
#define SWITCHYARD_CKERNELS_INTERNAL_H

#include "ckernels.h"

#include <string.h>

typedef struct { uint16_t d; uint8_t qs[16]; } sy_block_q4_0;              // 18 bytes
typedef struct { uint16_t d; uint16_t m; uint8_t qs[16]; } sy_block_q4_1;  // 20 bytes
typedef struct { uint16_t d; int8_t qs[32]; } sy_block_q8_0;               // 34 bytes
/// 5 bits: value = d (q − 16); low nibbles as in Q4_0, bit i of qh is the fifth bit of element i.
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } sy_block_q5_0;  // 22 bytes

/// K-quants: super-blocks of 256 values.
#define SY_QK_K 256
/// value = d·sc_j·q − dmin·m_j for sub-block j (32 values) with 6-bit sc_j, m_j packed in `scales` (see
/// sy_unpack_scales_k4); qs holds 64-value chunks: sub-block 2c in the low nibbles of qs[32c..<32c+32], 2c+1 in the
/// high ones.
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } sy_block_q4_K;  // 144 bytes
/// Q4_K plus a fifth bit: bit j of qh[l] is the high bit of element l of sub-block j.
typedef struct { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } sy_block_q5_K;  // 176
/// value = d·scales[k]·(q − 32) for sub-block k (16 values), q 6 bits: low four in ql, high two in qh. In each half
/// (128 values; ql += 64, qh += 32), element l < 32 of the quarters 0, 1, 2, 3 takes the low nibble of ql[l], the
/// low nibble of ql[l + 32], the high nibble of ql[l], the high nibble of ql[l + 32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l].
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } sy_block_q6_K;  // 210 bytes

_Static_assert(sizeof(sy_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(sy_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(sy_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(sy_block_q8a) == 40, "q8a block");
_Static_assert(sizeof(sy_block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(sy_block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(sy_block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(sy_block_q6_K) == 210, "q6_K block");
_Static_assert(sizeof(sy_block_q8k) == 320, "q8k block");

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K / Q5_K super-block, as bytes: out[0..1] hold sc_0..7,
/// out[2..3] m_0..7 (little-endian words). ggml packs sub-blocks 0-3 in the low six bits of bytes 0-3 (scales) and
/// 4-7 (mins), sub-blocks 4-7 in the nibbles of bytes 8-11 with their top two bits in the high bits of bytes 0-7.
static inline void sy_unpack_scales_k4(const uint8_t *scales, uint32_t *out) {
    uint32_t u[3];
    memcpy(u, scales, 12);
    out[0] = u[0] & 0x3F3F3F3Fu;
    out[1] = (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    out[2] = u[1] & 0x3F3F3F3Fu;
    out[3] = ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4);
}

#define SY_DECLARE_LEVEL(suffix)                                                                              \
    void sy_quantize_rows_q8a_##suffix(const float *x, sy_block_q8a *y, int64_t n, int64_t rows);             \
    int sy_matmul_##suffix(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,   \
                           const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);       \
    void sy_attention_head_##suffix(const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv,      \
                                    int64_t head_dim, int64_t kv_stride, float scale, float softcap,       \
                                    float *scratch,                                                          \
                                    float *out);                                                             \
    void sy_silu_mul_##suffix(int64_t n, float *g, const float *u);                                          \
    void sy_gelu_mul_##suffix(int64_t n, float *g, const float *u);                                          \
    void sy_bias_gelu_erf_##suffix(int64_t n, float *h, const float *bias);                                  \
    void sy_attention_head_q8_##suffix(const float *q, const void *k, const void *v, int64_t n_kv,           \
                                       int64_t head_dim, int64_t kv_stride_bytes, float scale, float softcap, \
                                       float *scratch,                                                       \
                                       float *out);                                                          \
    float sy_dot_f32_##suffix(int64_t n, const float *a, const float *b);                                   \
    void sy_f32_to_f16_row_##suffix(const float *x, uint16_t *y, int64_t n);                                 \
    void sy_quantize_rows_q8k_##suffix(const float *x, sy_block_q8k *y, int64_t n, int64_t rows);             \
    /* Q4_K, Q5_K, Q6_K over q8k activation rows; Q8_0 over q8a rows (SIMD levels only); -1 for other types. */ \
    int sy_matmul_q8k_##suffix(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1, \
                               const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);

SY_DECLARE_LEVEL(generic)
#if defined(__x86_64__)
SY_DECLARE_LEVEL(avx2)
SY_DECLARE_LEVEL(vnni)
#endif

#endif
