// Read bandwidth roofline: streams a 256 MB buffer (several times the 32 MB L3) with 256-bit loads, 1 or 2 threads.
//   clang -O3 -mavx2 -o membw membw.c -lpthread && ./membw
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (256u << 20)
static uint8_t *buf;
static volatile int sink;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

typedef struct { size_t lo, hi; } range_t;
static void *readr(void *arg) {
    const range_t *r = arg;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = r->lo; i < r->hi; i += 128) {
        a0 = _mm256_add_epi32(a0, _mm256_load_si256((const __m256i *)(buf + i)));
        a1 = _mm256_add_epi32(a1, _mm256_load_si256((const __m256i *)(buf + i + 32)));
        a2 = _mm256_add_epi32(a2, _mm256_load_si256((const __m256i *)(buf + i + 64)));
        a3 = _mm256_add_epi32(a3, _mm256_load_si256((const __m256i *)(buf + i + 96)));
    }
    a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    sink += _mm256_extract_epi32(a0, 0);
    return NULL;
}

int main(void) {
    if (posix_memalign((void **)&buf, 64, BYTES)) return 1;
    memset(buf, 1, BYTES);
    for (int threads = 1; threads <= 2; threads++) {
        double best = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            pthread_t th;
            range_t r0 = { 0, BYTES / threads }, r1 = { BYTES / 2, BYTES };
            const double t0 = now();
            if (threads == 2) pthread_create(&th, NULL, readr, &r1);
            readr(&r0);
            if (threads == 2) pthread_join(th, NULL);
            const double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("read bandwidth, %d thread(s): %.1f GB/s (best of 7)\n", threads, BYTES / best * 1e-9);
    }
    return 0;
}
