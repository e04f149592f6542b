// The q8a kernels with the prefetch change (Sources/CKernels/x86_impl.inc at commit PREFETCH, extracted into
// baseline/x86_impl_pf.inc), built beside the baseline's under other names: symbols end in _avx2pf / _vnnipf (the
// path "old+pf": the baseline with its software prefetch moved 16 rows ahead into L2).
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define SY_TARGET __attribute__((target("avx2,fma,f16c")))
#define SY_SUFFIX(name) name##_avx2pf
#define SY_DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "x86_impl_pf.inc"
#undef SY_TARGET
#undef SY_SUFFIX
#undef SY_DOT_U8S8

#define SY_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define SY_SUFFIX(name) name##_vnnipf
#define SY_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "x86_impl_pf.inc"
#endif
