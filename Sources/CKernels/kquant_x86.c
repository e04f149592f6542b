// Instantiates kquant_impl.inc for AVX2 and for AVX-512 VNNI (as x86.c does for x86_impl.inc).
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define SY_TARGET __attribute__((target("avx2,fma,f16c")))
#define SY_SUFFIX(name) name##_avx2
#define NK_VNNI 0
#include "kquant_impl.inc"
#undef SY_TARGET
#undef SY_SUFFIX
#undef NK_VNNI

#define SY_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define SY_SUFFIX(name) name##_vnni
#define NK_VNNI 1
#include "kquant_impl.inc"
#endif
