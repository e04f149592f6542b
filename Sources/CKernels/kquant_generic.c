// Portable C versions of the K-quant kernels over 256-value activation blocks (sy_block_q8k). Every result is the
// same float as the SIMD levels give: the integer sums are exact, and the float steps are the same fmaf calls in the
// same order.
#include "internal.h"

#include <math.h>

void sy_quantize_rows_q8k_generic(const float *x, sy_block_q8k *y, int64_t n, int64_t rows) {
    const int64_t nb = n / SY_QK_K;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *v = x + r * n + b * SY_QK_K;
            sy_block_q8k *out = y + r * nb + b;
            float amax = 0.0f;
            for (int i = 0; i < SY_QK_K; i++) amax = fmaxf(amax, fabsf(v[i]));
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            for (int i = 0; i < SY_QK_K; i++) out->qs[i] = (int8_t)nearbyintf(v[i] * id);
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int i = 0; i < 16; i++) s += out->qs[16 * g + i];
                out->bsums16[g] = (int16_t)s;
            }
            for (int g = 0; g < 8; g++) out->bsums32[g] = (int16_t)(out->bsums16[2 * g] + out->bsums16[2 * g + 1]);
            out->d = amax / 127.0f;
            memset(out->pad, 0, sizeof out->pad);
        }
    }
}

/// Q4_K / Q5_K row · q8k row: per super-block isum = Σ_j sc_j Σ_l q·a, imin = Σ_j m_j bsums32_j (exact), then two
/// fmaf. Q5_K (has_qh) adds bit j of qh[l] as bit 4 of level l of sub-block j.
static float kq_dot_k4_generic(int64_t nsb, const uint8_t *w, int has_qh, const sy_block_q8k *a) {
    const size_t bb = has_qh ? sizeof(sy_block_q5_K) : sizeof(sy_block_q4_K);
    float acc = 0.0f;
    for (int64_t i = 0; i < nsb; i++) {
        const sy_block_q5_K *x5 = (const sy_block_q5_K *)(w + (size_t)i * bb);  // Q4_K shares d, dmin, scales
        const uint8_t *qs = has_qh ? x5->qs : ((const sy_block_q4_K *)x5)->qs;
        uint32_t sm32[4];
        sy_unpack_scales_k4(x5->scales, sm32);
        const uint8_t *sm = (const uint8_t *)sm32;
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            int32_t s = 0;
            for (int l = 0; l < 32; l++) {
                int q = (qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0x0F;
                if (has_qh) q |= ((x5->qh[l] >> j) & 1) << 4;
                s += q * a[i].qs[32 * j + l];
            }
            isum += (int32_t)sm[j] * s;
            imin += (int32_t)sm[8 + j] * a[i].bsums32[j];
        }
        const float da = a[i].d;
        acc = fmaf((float)isum, sy_f16_to_f32(x5->d) * da, acc);
        acc = fmaf(-(float)imin, sy_f16_to_f32(x5->dmin) * da, acc);
    }
    return acc;
}

/// Q6_K row · q8k row: isum = Σ_k sc_k Σ_{l in k} q·a − 32 Σ_k sc_k bsums16_k (exact), then one fmaf.
static float kq_dot_q6_K_generic(int64_t nsb, const sy_block_q6_K *x, const sy_block_q8k *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nsb; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 8; j++) {  // 32-value groups; see sy_block_q6_K for the bit layout
            const int n = j / 4, m = j % 4;
            for (int h = 0; h < 2; h++) {
                int32_t s = 0;
                for (int l = 16 * h; l < 16 * h + 16; l++) {
                    const int lo = (x[i].ql[64 * n + 32 * (m & 1) + l] >> (m >= 2 ? 4 : 0)) & 0x0F;
                    const int q = lo | (((x[i].qh[32 * n + l] >> (2 * m)) & 3) << 4);
                    s += q * a[i].qs[32 * j + l];
                }
                isum += (int32_t)x[i].scales[2 * j + h] * (s - 32 * a[i].bsums16[2 * j + h]);
            }
        }
        acc = fmaf((float)isum, sy_f16_to_f32(x[i].d) * a[i].d, acc);
    }
    return acc;
}

int sy_matmul_q8k_generic(int type, int64_t k, const void *w, size_t w_row_bytes, int64_t r0, int64_t r1,
                          const void *a, size_t a_row_bytes, int64_t ncols, float *dst, int64_t ldd) {
    const int64_t nsb = k / SY_QK_K;
    for (int64_t c = 0; c < ncols; c++) {
        const sy_block_q8k *ac = (const sy_block_q8k *)((const uint8_t *)a + (size_t)c * a_row_bytes);
        for (int64_t r = r0; r < r1; r++) {
            const void *wr = (const uint8_t *)w + (size_t)r * w_row_bytes;
            switch (type) {
            case SY_TYPE_Q4_K: dst[c * ldd + r] = kq_dot_k4_generic(nsb, wr, 0, ac); break;
            case SY_TYPE_Q5_K: dst[c * ldd + r] = kq_dot_k4_generic(nsb, wr, 1, ac); break;
            case SY_TYPE_Q6_K: dst[c * ldd + r] = kq_dot_q6_K_generic(nsb, wr, ac); break;
            default: return -1;
            }
        }
    }
    return 0;
}
