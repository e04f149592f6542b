// Prototype: K-quant mat-vec / mat-mat kernels against 256-value activation blocks (issue 15).
//
// Activations for the K-quants are quantized per 256 values (one float scale per super-block, as ggml's Q8_K)
// instead of per 32 (sy_block_q8a). With one activation scale per super-block, the whole super-block's product
// with one weight row — sub-block scales included — is an exact int32, and the float work per (row, column,
// super-block) is two fused multiply-adds. The Q4_K mins term comes from per-32 sums of the int8 activations
// (`bsums32`), the Q6_K "−32" term from per-16 sums (`bsums16`).
//
// Batch invariance: every (row, column) result is Σ over super-blocks, in order, of
//     acc = fma((float)isum, d_w · d_a, acc);   acc = fma(−(float)imin, dmin_w · d_a, acc)   (Q4_K)
//     acc = fma((float)isum, d_w · d_a, acc)                                                   (Q6_K)
// with isum / imin exact integers. Neither depends on how the integer sums were formed, so the 8-row kernel (rows in
// vector lanes), the one-row kernel and the generic C code give bit-identical floats for any batch of columns — and,
// unlike today, across levels too (generic == AVX2 == AVX-512 VNNI).
#ifndef K15_NEWK_H
#define K15_NEWK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 256 activations quantized to 8 bits: value ≈ d · qs[i]. 320 bytes, so that rows of blocks stay 64-byte aligned
/// (qs is read with full-width loads; a 292-byte ggml-style block would split every other load across lines).
typedef struct {
    int8_t qs[256];
    int16_t bsums16[16];  ///< Σ qs over each 16 values (Q6_K)
    int16_t bsums32[8];   ///< Σ qs over each 32 values (Q4_K / Q5_K mins)
    float d;
    uint8_t pad[12];
} sy_block_q8k;

/// Quantizes `rows` rows of `n` floats (n a multiple of 256, row stride n) into q8k blocks (row stride n/256
/// blocks). d = amax/127, q = round-to-nearest-even(x · 127/amax): the same bytes at every level.
void nk_quantize_rows_q8k_generic(const float *x, sy_block_q8k *y, int64_t n, int64_t rows);
void nk_quantize_rows_q8k_avx2(const float *x, sy_block_q8k *y, int64_t n, int64_t rows);
void nk_quantize_rows_q8k_vnni(const float *x, sy_block_q8k *y, int64_t n, int64_t rows);

/// dst[c * ldd + r] = dot(weight row r, activation row c) for r in [r0, r1), c in [0, ncols); the contract of
/// sy_matmul, with activation rows of q8k blocks `a_row_bytes` apart. Types: SY_TYPE_Q4_K (12), SY_TYPE_Q5_K (13),
/// SY_TYPE_Q6_K (14) with q8k activation rows; SY_TYPE_Q8_0 (8) with the existing q8a activation rows (bit-identical
/// to today's kernel; VNNI level only differs in how the integers are formed).
/// Returns 0, or -1 for an unsupported type.
int nk_matmul_q8k_generic(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                          const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);
int nk_matmul_q8k_avx2(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                       const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);
int nk_matmul_q8k_vnni(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                       const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);

#ifdef __cplusplus
}
#endif

#endif
