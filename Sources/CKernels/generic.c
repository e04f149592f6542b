// Portable kernels: the reference every SIMD path is tested against, and the path for CPUs without AVX2.
#include "internal.h"

#include <math.h>
#include <string.h>

float sy_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exp = 127 - 15 + 1;
            while ((mant & 0x400) == 0) { mant <<= 1; exp--; }
            mant &= 0x3FF;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sy_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = x & 0x7FFFFF;
    if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        const uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

void sy_quantize_rows_q8a_generic(const float *x, sy_block_q8a *y, int64_t n, int64_t rows) {
    const int64_t nb = n / 32;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        sy_block_q8a *yr = y + r * nb;
        for (int64_t b = 0; b < nb; b++) {
            const float *v = xr + b * 32;
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) {
                const float a = fabsf(v[i]);
                amax = a > amax ? a : amax;
            }
            const float d = amax / 127.0f;
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            int sum = 0;
            for (int i = 0; i < 32; i++) {
                const int q = (int)nearbyintf(v[i] * id);
                yr[b].qs[i] = (int8_t)q;
                sum += q;
            }
            // d and s rounded through half precision, as GGUF's q8_1 blocks store them
            yr[b].d = sy_f16_to_f32(sy_f32_to_f16(d));
            yr[b].s = sy_f16_to_f32(sy_f32_to_f16(d * (float)sum));
        }
    }
}

/// Σ q·a over one block of 32 packed nibbles (low nibbles are elements 0..15, high ones 16..31).
static inline int nibble_dot(const uint8_t *qs, const int8_t *a) {
    int sum = 0;
    for (int i = 0; i < 16; i++) sum += (qs[i] & 0x0F) * a[i] + (qs[i] >> 4) * a[i + 16];
    return sum;
}

static float dot_q4_0_generic(int64_t nb, const sy_block_q4_0 *x, const sy_block_q8a *a) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const int sum = nibble_dot(x[b].qs, a[b].qs);
        const float d = sy_f16_to_f32(x[b].d);
        acc += d * (a[b].d * (float)sum - 8.0f * a[b].s);
    }
    return acc;
}

static float dot_q4_1_generic(int64_t nb, const sy_block_q4_1 *x, const sy_block_q8a *a) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const int sum = nibble_dot(x[b].qs, a[b].qs);
        acc += sy_f16_to_f32(x[b].d) * a[b].d * (float)sum + sy_f16_to_f32(x[b].m) * a[b].s;
    }
    return acc;
}

static float dot_q8_0_generic(int64_t nb, const sy_block_q8_0 *x, const sy_block_q8a *a) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int i = 0; i < 32; i++) sum += x[b].qs[i] * a[b].qs[i];
        acc += sy_f16_to_f32(x[b].d) * a[b].d * (float)sum;
    }
    return acc;
}

/// The 32 five-bit values of a Q5_0 block, in element order.
static inline void q5_0_values(const sy_block_q5_0 *x, int *q) {
    uint32_t qh;
    memcpy(&qh, x->qh, 4);
    for (int i = 0; i < 16; i++) {
        q[i] = (x->qs[i] & 0x0F) | (int)(((qh >> i) & 1) << 4);
        q[i + 16] = (x->qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
    }
}

static float dot_q5_0_generic(int64_t nb, const sy_block_q5_0 *x, const sy_block_q8a *a) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int q[32], sum = 0;
        q5_0_values(x + b, q);
        for (int i = 0; i < 32; i++) sum += q[i] * a[b].qs[i];
        acc += sy_f16_to_f32(x[b].d) * (a[b].d * (float)sum - 16.0f * a[b].s);
    }
    return acc;
}

/// Level q (0...31) of element l of sub-block j of a Q4_K (qh NULL) or Q5_K super-block.
static inline int k4_level(const uint8_t *qs, const uint8_t *qh, int j, int l) {
    const int q = (qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0x0F;
    return qh ? q | (((qh[l] >> j) & 1) << 4) : q;
}

/// Level q (0...63, value q − 32) of element l (0...31) of the 32-value group j (0...7) of a Q6_K super-block.
static inline int q6_K_level(const sy_block_q6_K *x, int j, int l) {
    const int n = j / 4, m = j % 4;
    const int lo = (x->ql[64 * n + 32 * (m & 1) + l] >> (m >= 2 ? 4 : 0)) & 0x0F;
    return lo | (((x->qh[32 * n + l] >> (2 * m)) & 3) << 4);
}

static inline float bf16_to_f32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float dot_bf16_generic(int64_t n, const uint16_t *w, const float *a) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += bf16_to_f32(w[i]) * a[i];
    return s;
}

float sy_dot_f32_generic(int64_t n, const float *a, const float *b) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f16_generic(int64_t n, const uint16_t *w, const float *a) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += sy_f16_to_f32(w[i]) * a[i];
    return s;
}

int sy_matmul_generic(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                      const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd) {
    const uint8_t *wb = (const uint8_t *)w;
    const uint8_t *ab = (const uint8_t *)a;
    const int64_t nb = k / 32;
    for (int64_t c = 0; c < ncols; c++) {
        const void *ar = ab + (size_t)c * a_row_bytes;
        for (int64_t r = r0; r < r1; r++) {
            const void *wr = wb + (size_t)r * w_row_bytes;
            float v;
            switch (type) {
            case SY_TYPE_F32: v = sy_dot_f32_generic(k, (const float *)wr, (const float *)ar); break;
            case SY_TYPE_F16: v = dot_f16_generic(k, (const uint16_t *)wr, (const float *)ar); break;
            case SY_TYPE_Q4_0: v = dot_q4_0_generic(nb, (const sy_block_q4_0 *)wr, (const sy_block_q8a *)ar); break;
            case SY_TYPE_Q4_1: v = dot_q4_1_generic(nb, (const sy_block_q4_1 *)wr, (const sy_block_q8a *)ar); break;
            case SY_TYPE_Q8_0: v = dot_q8_0_generic(nb, (const sy_block_q8_0 *)wr, (const sy_block_q8a *)ar); break;
            case SY_TYPE_Q5_0: v = dot_q5_0_generic(nb, (const sy_block_q5_0 *)wr, (const sy_block_q8a *)ar); break;
            // the K-quants read q8k activations: kquant_generic.c
            case SY_TYPE_BF16: v = dot_bf16_generic(k, (const uint16_t *)wr, (const float *)ar); break;
            default: return -1;
            }
            dst[c * ldd + r] = v;
        }
    }
    return 0;
}

/// scratch[j] = exp(scratch[j] - max); returns 1 / Σ scratch[j] (the softmax normalizer).
static float exp_shifted(float *scratch, int64_t n, float max) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        const float e = expf(scratch[j] - max);
        scratch[j] = e;
        sum += e;
    }
    return 1.0f / sum;
}

void sy_attention_head_generic(const float *q, const uint16_t *k, const uint16_t *v, int64_t n_kv, int64_t head_dim,
                               int64_t kv_stride, float scale, float softcap, float *scratch, float *out) {
    float max = -INFINITY;
    for (int64_t j = 0; j < n_kv; j++) {
        const uint16_t *kj = k + j * kv_stride;
        float dot = 0.0f;
        for (int64_t d = 0; d < head_dim; d++) dot += q[d] * sy_f16_to_f32(kj[d]);
        const float s = softcap > 0.0f ? softcap * tanhf(scale * dot / softcap) : scale * dot;
        scratch[j] = s;
        max = s > max ? s : max;
    }
    const float inv = exp_shifted(scratch, n_kv, max);
    for (int64_t d = 0; d < head_dim; d++) out[d] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        const float p = scratch[j] * inv;
        const uint16_t *vj = v + j * kv_stride;
        for (int64_t d = 0; d < head_dim; d++) out[d] += p * sy_f16_to_f32(vj[d]);
    }
}

void sy_f32_to_f16_row_generic(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = sy_f32_to_f16(x[i]);
}

void sy_silu_mul_generic(int64_t n, float *g, const float *u) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void sy_bias_gelu_erf_generic(int64_t n, float *h, const float *bias) {
    for (int64_t i = 0; i < n; i++) {
        const float x = h[i] + bias[i];
        h[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    }
}

void sy_gelu_mul_generic(int64_t n, float *g, const float *u) {
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        const float z = 1.5957691216057308f * (x + 0.044715f * x * x * x);
        g[i] = x / (1.0f + expf(-z)) * u[i];
    }
}

int sy_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    switch (type) {
    case SY_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case SY_TYPE_F16: {
        const uint16_t *h = (const uint16_t *)src;
        for (int64_t i = 0; i < n; i++) dst[i] = sy_f16_to_f32(h[i]);
        return 0;
    }
    case SY_TYPE_Q4_0: {
        const sy_block_q4_0 *x = (const sy_block_q4_0 *)src;
        for (int64_t b = 0; b < n / 32; b++) {
            const float d = sy_f16_to_f32(x[b].d);
            for (int i = 0; i < 16; i++) {
                dst[b * 32 + i] = d * (float)((x[b].qs[i] & 0x0F) - 8);
                dst[b * 32 + i + 16] = d * (float)((x[b].qs[i] >> 4) - 8);
            }
        }
        return 0;
    }
    case SY_TYPE_Q4_1: {
        const sy_block_q4_1 *x = (const sy_block_q4_1 *)src;
        for (int64_t b = 0; b < n / 32; b++) {
            const float d = sy_f16_to_f32(x[b].d), m = sy_f16_to_f32(x[b].m);
            for (int i = 0; i < 16; i++) {
                dst[b * 32 + i] = d * (float)(x[b].qs[i] & 0x0F) + m;
                dst[b * 32 + i + 16] = d * (float)(x[b].qs[i] >> 4) + m;
            }
        }
        return 0;
    }
    case SY_TYPE_Q8_0: {
        const sy_block_q8_0 *x = (const sy_block_q8_0 *)src;
        for (int64_t b = 0; b < n / 32; b++) {
            const float d = sy_f16_to_f32(x[b].d);
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = d * (float)x[b].qs[i];
        }
        return 0;
    }
    case SY_TYPE_BF16: {
        const uint16_t *h = (const uint16_t *)src;
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]);
        return 0;
    }
    // The products and differences below are separate statements so that no compiler fuses them into an fma:
    // dequantized values are then the same floats as ggml's (and gguf-py's) on every CPU.
    case SY_TYPE_Q5_0: {
        const sy_block_q5_0 *x = (const sy_block_q5_0 *)src;
        for (int64_t b = 0; b < n / 32; b++) {
            int q[32];
            q5_0_values(x + b, q);
            const float d = sy_f16_to_f32(x[b].d);
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = (float)(q[i] - 16) * d;
        }
        return 0;
    }
    case SY_TYPE_Q4_K:
    case SY_TYPE_Q5_K: {
        const int has_qh = type == SY_TYPE_Q5_K;
        const size_t block_bytes = has_qh ? sizeof(sy_block_q5_K) : sizeof(sy_block_q4_K);
        for (int64_t i = 0; i < n / SY_QK_K; i++) {
            const sy_block_q5_K *x = (const sy_block_q5_K *)((const uint8_t *)src + (size_t)i * block_bytes);
            const uint8_t *qs = has_qh ? x->qs : ((const sy_block_q4_K *)x)->qs;
            uint32_t sm32[4];
            sy_unpack_scales_k4(x->scales, sm32);
            const uint8_t *sm = (const uint8_t *)sm32;
            const float d = sy_f16_to_f32(x->d), dmin = sy_f16_to_f32(x->dmin);
            for (int j = 0; j < 8; j++) {
                const float scale = d * (float)sm[j];
                const float min = dmin * (float)sm[8 + j];
                for (int l = 0; l < 32; l++) {
                    const float v = scale * (float)k4_level(qs, has_qh ? x->qh : NULL, j, l);
                    dst[i * SY_QK_K + j * 32 + l] = v - min;
                }
            }
        }
        return 0;
    }
    case SY_TYPE_Q6_K: {
        const sy_block_q6_K *x = (const sy_block_q6_K *)src;
        for (int64_t i = 0; i < n / SY_QK_K; i++) {
            const float d = sy_f16_to_f32(x[i].d);
            for (int j = 0; j < 8; j++)
                for (int l = 0; l < 32; l++) {
                    const float scale = d * (float)x[i].scales[2 * j + l / 16];
                    dst[i * SY_QK_K + j * 32 + l] = scale * (float)(q6_K_level(x + i, j, l) - 32);
                }
        }
        return 0;
    }
    default: return -1;
    }
}

void sy_quantize_row_q8_0(const float *x, void *y, int64_t n) {
    sy_block_q8_0 *out = (sy_block_q8_0 *)y;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        out[b].d = sy_f32_to_f16(d);
        for (int i = 0; i < 32; i++) out[b].qs[i] = (int8_t)nearbyintf(v[i] * id);
    }
}

void sy_attention_head_q8_generic(const float *q, const void *k, const void *v, int64_t n_kv, int64_t head_dim,
                                  int64_t kv_stride_bytes, float scale, float softcap, float *scratch, float *out) {
    const int64_t nb = head_dim / 32;
    float max = -INFINITY;
    for (int64_t j = 0; j < n_kv; j++) {
        const sy_block_q8_0 *kj = (const sy_block_q8_0 *)((const uint8_t *)k + j * kv_stride_bytes);
        float dot = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            float s = 0.0f;
            for (int i = 0; i < 32; i++) s += q[b * 32 + i] * (float)kj[b].qs[i];
            dot += sy_f16_to_f32(kj[b].d) * s;
        }
        const float sc = softcap > 0.0f ? softcap * tanhf(scale * dot / softcap) : scale * dot;
        scratch[j] = sc;
        max = sc > max ? sc : max;
    }
    const float inv = exp_shifted(scratch, n_kv, max);
    for (int64_t d = 0; d < head_dim; d++) out[d] = 0.0f;
    for (int64_t j = 0; j < n_kv; j++) {
        const sy_block_q8_0 *vj = (const sy_block_q8_0 *)((const uint8_t *)v + j * kv_stride_bytes);
        for (int64_t b = 0; b < nb; b++) {
            const float w = scratch[j] * inv * sy_f16_to_f32(vj[b].d);
            for (int i = 0; i < 32; i++) out[b * 32 + i] += w * (float)vj[b].qs[i];
        }
    }
}
