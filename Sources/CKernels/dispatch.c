// Chooses the kernel level once from CPUID and forwards every public entry point to it.
#include "internal.h"

static int detected = -1;
static int active = -1;

int sy_detected_level(void) {
    if (detected < 0) {
#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            __builtin_cpu_supports("f16c"))
            detected = SY_LEVEL_AVX512VNNI;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
            detected = SY_LEVEL_AVX2;
        else
            detected = SY_LEVEL_GENERIC;
#else
        detected = SY_LEVEL_GENERIC;
#endif
    }
    return detected;
}

int sy_active_level(void) {
    if (active < 0) active = sy_detected_level();
    return active;
}

int sy_set_level(int level) {
    const int best = sy_detected_level();
    active = level < 0 ? 0 : (level > best ? best : level);
    return active;
}

int sy_type_supported(int type) {
    return type == SY_TYPE_F32 || type == SY_TYPE_F16 || type == SY_TYPE_BF16 || sy_type_activation(type) != SY_ACT_F32;
}

int sy_type_activation(int type) {
    switch (type) {
    case SY_TYPE_Q4_0: case SY_TYPE_Q4_1: case SY_TYPE_Q5_0: case SY_TYPE_Q8_0: return SY_ACT_Q8A;
    case SY_TYPE_Q4_K: case SY_TYPE_Q5_K: case SY_TYPE_Q6_K: return SY_ACT_Q8K;
    default: return SY_ACT_F32;
    }
}

/// K-quants go to the kernels over q8k activations; Q8_0 at the SIMD levels to the one beside them (same q8a
/// activations and float arithmetic as the general kernel, so the same bits, formed with fewer instructions).
static int uses_q8k_kernels(int type, int level) {
    return sy_type_activation(type) == SY_ACT_Q8K || (type == SY_TYPE_Q8_0 && level != SY_LEVEL_GENERIC);
}

static int clamp_level(int level) {
    const int best = sy_detected_level();
    return level < 0 ? 0 : (level > best ? best : level);
}

#if defined(__x86_64__)
#define SY_FORWARD_AT(level, call_generic, call_avx2, call_vnni)                                              \
    switch (clamp_level(level)) {                                                                             \
    case SY_LEVEL_AVX512VNNI: return call_vnni;                                                               \
    case SY_LEVEL_AVX2: return call_avx2;                                                                     \
    default: return call_generic;                                                                             \
    }
#else
#define SY_FORWARD_AT(level, call_generic, call_avx2, call_vnni) return call_generic;
#endif
#define SY_FORWARD(call_generic, call_avx2, call_vnni) SY_FORWARD_AT(sy_active_level(), call_generic, call_avx2, call_vnni)

void sy_quantize_rows_q8a_at(int level, const float *x, sy_block_q8a *y, int64_t n, int64_t rows) {
    SY_FORWARD_AT(level, sy_quantize_rows_q8a_generic(x, y, n, rows), sy_quantize_rows_q8a_avx2(x, y, n, rows),
                  sy_quantize_rows_q8a_vnni(x, y, n, rows))
}

void sy_quantize_rows_q8k_at(int level, const float *x, sy_block_q8k *y, int64_t n, int64_t rows) {
    SY_FORWARD_AT(level, sy_quantize_rows_q8k_generic(x, y, n, rows), sy_quantize_rows_q8k_avx2(x, y, n, rows),
                  sy_quantize_rows_q8k_vnni(x, y, n, rows))
}

void sy_quantize_rows_q8k(const float *x, sy_block_q8k *y, int64_t n, int64_t rows) {
    sy_quantize_rows_q8k_at(sy_active_level(), x, y, n, rows);
}

int sy_matmul_at(int level, int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1, const void *a,
                 size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd) {
    level = clamp_level(level);
    if (uses_q8k_kernels(type, level)) {
        SY_FORWARD_AT(level, sy_matmul_q8k_generic(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd),
                      sy_matmul_q8k_avx2(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd),
                      sy_matmul_q8k_vnni(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd))
    }
    SY_FORWARD_AT(level, sy_matmul_generic(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd),
                  sy_matmul_avx2(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd),
                  sy_matmul_vnni(type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd))
}

void sy_attention_head_at(int level, const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv, int64_t head_dim,
                          int64_t kv_stride, float scale, float softcap, float *scratch, float *out) {
    SY_FORWARD_AT(level, sy_attention_head_generic(q, k, v, n_kv, head_dim, kv_stride, scale, softcap, scratch, out),
                  sy_attention_head_avx2(q, k, v, n_kv, head_dim, kv_stride, scale, softcap, scratch, out),
                  sy_attention_head_vnni(q, k, v, n_kv, head_dim, kv_stride, scale, softcap, scratch, out))
}

void sy_silu_mul_at(int level, int64_t n, float *g, const float *u) {
    SY_FORWARD_AT(level, sy_silu_mul_generic(n, g, u), sy_silu_mul_avx2(n, g, u), sy_silu_mul_vnni(n, g, u))
}

void sy_attention_head_q8_at(int level, const float *q, const void *k, const void *v, int64_t n_kv, int64_t head_dim,
                             int64_t kv_stride_bytes, float scale, float softcap, float *scratch, float *out) {
    SY_FORWARD_AT(level, sy_attention_head_q8_generic(q, k, v, n_kv, head_dim, kv_stride_bytes, scale, softcap, scratch, out),
                  sy_attention_head_q8_avx2(q, k, v, n_kv, head_dim, kv_stride_bytes, scale, softcap, scratch, out),
                  sy_attention_head_q8_vnni(q, k, v, n_kv, head_dim, kv_stride_bytes, scale, softcap, scratch, out))
}

void sy_bias_gelu_erf_at(int level, int64_t n, float *h, const float *bias) {
    SY_FORWARD_AT(level, sy_bias_gelu_erf_generic(n, h, bias), sy_bias_gelu_erf_avx2(n, h, bias), sy_bias_gelu_erf_vnni(n, h, bias))
}

void sy_gelu_mul_at(int level, int64_t n, float *g, const float *u) {
    SY_FORWARD_AT(level, sy_gelu_mul_generic(n, g, u), sy_gelu_mul_avx2(n, g, u), sy_gelu_mul_vnni(n, g, u))
}

void sy_quantize_rows_q8a(const float *x, sy_block_q8a *y, int64_t n, int64_t rows) {
    SY_FORWARD(sy_quantize_rows_q8a_generic(x, y, n, rows), sy_quantize_rows_q8a_avx2(x, y, n, rows),
               sy_quantize_rows_q8a_vnni(x, y, n, rows))
}

int sy_matmul(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1, const void *a,
              size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd) {
    return sy_matmul_at(sy_active_level(), type, k, w, w_row_bytes, r0, r1, a, a_row_bytes, ncols, dst, ldd);
}

void sy_attention_head(const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv, int64_t head_dim,
                       int64_t kv_stride, float scale, float *scratch, float *out) {
    SY_FORWARD(sy_attention_head_generic(q, k, v, n_kv, head_dim, kv_stride, scale, 0.0f, scratch, out),
               sy_attention_head_avx2(q, k, v, n_kv, head_dim, kv_stride, scale, 0.0f, scratch, out),
               sy_attention_head_vnni(q, k, v, n_kv, head_dim, kv_stride, scale, 0.0f, scratch, out))
}

void sy_silu_mul(int64_t n, float *g, const float *u) {
    SY_FORWARD(sy_silu_mul_generic(n, g, u), sy_silu_mul_avx2(n, g, u), sy_silu_mul_vnni(n, g, u))
}

float sy_dot_f32(int64_t n, const float *a, const float *b) {
    SY_FORWARD(sy_dot_f32_generic(n, a, b), sy_dot_f32_avx2(n, a, b), sy_dot_f32_vnni(n, a, b))
}

void sy_f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    SY_FORWARD(sy_f32_to_f16_row_generic(x, y, n), sy_f32_to_f16_row_avx2(x, y, n), sy_f32_to_f16_row_vnni(x, y, n))
}
