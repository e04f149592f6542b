// Block layouts (as in GGUF files) and the per-level entry points behind the dispatch in dispatch.c.
#ifndef SWITCHYARD_CKERNELS_INTERNAL_H
#define SWITCHYARD_CKERNELS_INTERNAL_H

#include "ckernels.h"

typedef struct { uint16_t d; uint8_t qs[16]; } sy_block_q4_0;              // 18 bytes
typedef struct { uint16_t d; uint16_t m; uint8_t qs[16]; } sy_block_q4_1;  // 20 bytes
typedef struct { uint16_t d; int8_t qs[32]; } sy_block_q8_0;               // 34 bytes

_Static_assert(sizeof(sy_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(sy_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(sy_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(sy_block_q8a) == 40, "q8a block");

#define SY_DECLARE_LEVEL(suffix)                                                                              \
    void sy_quantize_rows_q8a_##suffix(const float *x, sy_block_q8a *y, int64_t n, int64_t rows);             \
    int sy_matmul_##suffix(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,   \
                           const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);       \
    void sy_attention_head_##suffix(const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv,      \
                                    int64_t head_dim, int64_t kv_stride, float scale, float *scratch,        \
                                    float *out);                                                             \
    void sy_silu_mul_##suffix(int64_t n, float *g, const float *u);                                          \
    void sy_gelu_mul_##suffix(int64_t n, float *g, const float *u);                                          \
    float sy_dot_f32_##suffix(int64_t n, const float *a, const float *b);                                   \
    void sy_f32_to_f16_row_##suffix(const float *x, uint16_t *y, int64_t n);

SY_DECLARE_LEVEL(generic)
#if defined(__x86_64__)
SY_DECLARE_LEVEL(avx2)
SY_DECLARE_LEVEL(vnni)
#endif

#endif
