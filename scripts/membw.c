/* Read bandwidth of main memory: the bound on decode speed.
 *
 * Decoding one token reads every weight once, so tokens/s can never exceed
 * (read bandwidth) / (bytes of weights). This sums a 1 GiB array (far larger
 * than any cache) with T threads, repeated, and prints the best GB/s.
 * Build: cc -O3 -march=x86-64-v3 -fopenmp membw.c -o membw   Run: membw [THREADS]
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    size_t n = (1UL << 30) / sizeof(uint64_t);
    uint64_t *a = aligned_alloc(64, n * sizeof(uint64_t));
    if (!a) return 1;
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < n; i++) a[i] = i;
    double best = 0;
    uint64_t check = 0;
    for (int rep = 0; rep < 10; rep++) {
        uint64_t sum = 0;
        double t0 = now();
#pragma omp parallel for num_threads(threads) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += a[i];
        double gbs = n * sizeof(uint64_t) / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        check += sum;
    }
    printf("{\"threads\": %d, \"read_gb_per_s\": %.2f, \"checksum\": %llu}\n", threads, best, (unsigned long long)(check & 0xffff));
    free(a);
    return 0;
}
