// The innermost loops of the engine: quantized dot products, mat-vec / mat-mat tiles, attention for one head.
//
// Swift compiles for the baseline ISA of its target (SSE2 on x86-64) and has no per-function target attributes,
// so code that must use AVX2 `vpmaddubsw` or AVX-512 VNNI `vpdpbusd` on a CPU that has them — while the same
// binary stays correct on any x86-64 — lives here, compiled three times (generic, AVX2, AVX-512 VNNI) and chosen
// once at run time from CPUID.
#ifndef SWITCHYARD_CKERNELS_H
#define SWITCHYARD_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// ggml type ids of the weight formats these kernels read.
enum {
    SY_TYPE_F32 = 0,
    SY_TYPE_F16 = 1,
    SY_TYPE_Q4_0 = 2,
    SY_TYPE_Q4_1 = 3,
    SY_TYPE_Q5_0 = 6,
    SY_TYPE_Q8_0 = 8,
    SY_TYPE_Q4_K = 12,
    SY_TYPE_Q5_K = 13,
    SY_TYPE_Q6_K = 14,
    SY_TYPE_BF16 = 30,
};

/// Activations quantized to 8 bits, one block per 32 values: value ≈ d * qs[i]; s = d * Σ qs[i].
typedef struct {
    float d;
    float s;
    int8_t qs[32];
} sy_block_q8a;

/// Activations quantized to 8 bits, one block per 256 values (the K-quants' super-block): value ≈ d · qs[i], with
/// the sums of each 16 and each 32 values (for the Q6_K offset and the Q4_K / Q5_K mins). 320 bytes, so rows of
/// blocks stay 64-byte aligned. One scale per 256 values is what llama.cpp's Q8_K uses for the same weights; it lets
/// a whole super-block's product with one weight row be one exact int32.
typedef struct {
    int8_t qs[256];
    int16_t bsums16[16];
    int16_t bsums32[8];
    float d;
    uint8_t pad[12];
} sy_block_q8k;

/// The activation format a weight type's kernels read.
enum { SY_ACT_F32 = 0, SY_ACT_Q8A = 1, SY_ACT_Q8K = 2 };

/// Kernel levels. The detected level is the best the CPU supports; tests may force a lower one.
enum { SY_LEVEL_GENERIC = 0, SY_LEVEL_AVX2 = 1, SY_LEVEL_AVX512VNNI = 2 };
int sy_detected_level(void);
int sy_active_level(void);
/// Forces a level (clamped to the detected one). Returns the level now active.
int sy_set_level(int level);

/// The same entry points at an explicit level (clamped to the detected one), so tests can compare levels without
/// changing what the rest of the process uses.
void sy_quantize_rows_q8a_at(int level, const float *x, sy_block_q8a *y, int64_t n, int64_t rows);
int sy_matmul_at(int level, int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                 const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);
/// `softcap` > 0: each score becomes softcap · tanh(score / softcap) before the softmax (Gemma 2); 0: plain.
void sy_attention_head_at(int level, const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv,
                          int64_t head_dim, int64_t kv_stride, float scale, float softcap, float *scratch, float *out);
void sy_silu_mul_at(int level, int64_t n, float *g, const float *u);
/// g[i] = gelu(g[i]) * u[i], GELU in its tanh form: x · σ(2·√(2/π)·(x + 0.044715 x³))
void sy_gelu_mul_at(int level, int64_t n, float *g, const float *u);
/// h[i] = gelu(h[i] + bias[i]), GELU in its exact form: x · ½(1 + erf(x/√2)) (BERT's `gelu`); the SIMD levels compute
/// erf as 1 − t·exp(−z² + P(t)) (Numerical Recipes' erfc, fractional error below 1.2e-7).
void sy_bias_gelu_erf_at(int level, int64_t n, float *h, const float *bias);

/// IEEE half to float.
float sy_f16_to_f32(uint16_t h);
uint16_t sy_f32_to_f16(float f);

/// Quantizes `rows` rows of `n` floats (n a multiple of 32; row stride n) into q8a blocks (row stride n/32 blocks).
void sy_quantize_rows_q8a(const float *x, sy_block_q8a *y, int64_t n, int64_t rows);
/// Quantizes `rows` rows of `n` floats (n a multiple of 256; row stride n) into q8k blocks (row stride n/256
/// blocks): d = amax/127, q = round-to-nearest-even(x · 127/amax), the same bytes at every level.
void sy_quantize_rows_q8k(const float *x, sy_block_q8k *y, int64_t n, int64_t rows);
void sy_quantize_rows_q8k_at(int level, const float *x, sy_block_q8k *y, int64_t n, int64_t rows);

/// Whether `type` has a mat-mat kernel, and the format of the activations it reads (SY_ACT_*).
int sy_type_supported(int type);
int sy_type_activation(int type);

/// dst[c * ldd + r] = dot(weight row r, activation row c) for r in [r0, r1), c in [0, ncols).
/// Weight rows are `w_row_bytes` apart; activation rows `a_row_bytes` apart (floats, q8a or q8k blocks: see
/// sy_type_activation).
/// `k` is the row length in elements (a multiple of the block size: 32, or 256 for the K-quants).
/// Returns 0, or -1 for an unsupported type.
int sy_matmul(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
              const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd);

/// Dequantizes `n` elements (a multiple of the block size) of a row of `type` into floats. Returns 0 or -1.
int sy_dequantize_row(int type, const void *src, float *dst, int64_t n);

/// Causal attention of one query head over `n_kv` cached positions, keys and values in half precision:
/// out[0..<head_dim] = Σ_j softmax_j(scale * q·k_j) v_j, with k_j = k + j * kv_stride (same for v).
/// `scratch` holds n_kv floats.
void sy_attention_head(const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv, int64_t head_dim,
                       int64_t kv_stride, float scale, float *scratch, float *out);

/// 8-bit KV rows: `n` floats (a multiple of 32) into blocks of {half d; int8 qs[32]} (GGUF's Q8_0 layout).
void sy_quantize_row_q8_0(const float *x, void *y, int64_t n);

/// `sy_attention_head` over 8-bit keys and values (head_dim a multiple of 32); positions are `kv_stride_bytes` apart.
void sy_attention_head_q8_at(int level, const float *q, const void *k, const void *v, int64_t n_kv, int64_t head_dim,
                             int64_t kv_stride_bytes, float scale, float softcap, float *scratch, float *out);

/// y[i] = half(x[i]) for a row (round to nearest even).
void sy_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);

/// g[i] = silu(g[i]) * u[i]
void sy_silu_mul(int64_t n, float *g, const float *u);

/// Σ a[i] * b[i]
float sy_dot_f32(int64_t n, const float *a, const float *b);

/// Sets the calling thread's nice value (Linux); returns 0 on success.
int sy_set_thread_niceness(int niceness);

#ifdef __cplusplus
}
#endif

#endif
