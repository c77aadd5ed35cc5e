/* matmul_bench: native BF16 matmul speed next to this machine's own ceilings, measured in the same run.
 *   - FMA peak: 10 independent 8-lane FMA chains, no memory (what "% of peak" divides by);
 *   - read bandwidth: summing a 256 MiB f32 array with 8-lane loads (what decode GB/s is compared with);
 *   - aya_matmul_bf16_f32 for one shape and token count, rows split evenly over the threads
 *     (aya_matmul_bf16_bf16, the opt-in bf16 activations, with AYA_BENCH_ACTIVATIONS=bf16).
 * With 1 thread every time is the calling thread's CPU time (the machine is shared: wall time mostly measures the
 * other jobs); with 2+ threads it is wall time, and the probes run on as many threads.
 * Build and run (from the repository root, after cmake -S . -B build && cmake --build build):
 *   gcc -O2 -mavx2 -mfma -pthread native/bench/matmul_bench.c -Inative/include -Lbuild -laya_kernels -Wl,-rpath,build -o build/matmul_bench
 *   build/matmul_bench ROWS IN_DIM TOKENS [THREADS] [SECONDS]      e.g. build/matmul_bench 2048 2048 512 1 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aya_kernels.h"

static int threads = 1;
static int bf16_activations = 0;

static double now(void) {
    struct timespec t;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

enum { PROBE_FLOATS = 64 << 20 };
static float *probe_array;

/* In assembly: with intrinsics the compiler merges identical chains. */
static void *fma_probe(void *arg) {
    long n = *(long *) arg;
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\tvxorps %%ymm1, %%ymm1, %%ymm1\n\tvxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\tvxorps %%ymm4, %%ymm4, %%ymm4\n\tvxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\tvxorps %%ymm7, %%ymm7, %%ymm7\n\tvxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\tvxorps %%ymm14, %%ymm14, %%ymm14\n\tvxorps %%ymm15, %%ymm15, %%ymm15\n"
        "1:\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm1\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm3\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm7\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm9\n\t"
        "dec %0\n\tjnz 1b\n\tvzeroupper"
        : "+r"(n)
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm14", "xmm15", "cc");
    return NULL;
}

struct read_part { size_t start, end; float sum; };

static void *read_probe(void *arg) {
    struct read_part *p = arg;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = p->start; i < p->end; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(probe_array + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(probe_array + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(probe_array + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(probe_array + i + 24));
    }
    p->sum = _mm256_cvtss_f32(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return NULL;
}

struct matmul_part { const uint16_t *w; const float *x; float *out; int tokens, in_dim, rows, start, end; };

static void *matmul_part(void *arg) {
    struct matmul_part *p = arg;
    if (bf16_activations) aya_matmul_bf16_bf16(p->w, p->x, p->out, p->tokens, p->in_dim, p->rows, p->start, p->end);
    else aya_matmul_bf16_f32(p->w, p->x, p->out, p->tokens, p->in_dim, p->rows, p->start, p->end);
    return NULL;
}

/* Runs fn on `threads` threads (the caller is one of them) with args[i]. */
static void run_parallel(void *(*fn)(void *), void *args, size_t arg_size) {
    pthread_t ids[64];
    for (int i = 1; i < threads; i++) pthread_create(&ids[i], NULL, fn, (char *) args + (size_t) i * arg_size);
    fn(args);
    for (int i = 1; i < threads; i++) pthread_join(ids[i], NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: matmul_bench ROWS IN_DIM TOKENS [THREADS] [SECONDS]\n");
        return 2;
    }
    int rows = atoi(argv[1]), in_dim = atoi(argv[2]), tokens = atoi(argv[3]);
    threads = argc > 4 ? atoi(argv[4]) : 1;
    double seconds = argc > 5 ? atof(argv[5]) : 2.0;
    if (rows < 1 || in_dim < 1 || tokens < 1 || threads < 1 || threads > 64 || seconds <= 0) {
        fprintf(stderr, "matmul_bench: bad arguments\n");
        return 2;
    }
    const char *activations = getenv("AYA_BENCH_ACTIVATIONS");
    bf16_activations = activations != NULL && strcmp(activations, "bf16") == 0;
    if (aya_init() != AYA_OK) {
        fprintf(stderr, "matmul_bench: %s\n", aya_last_error());
        return 1;
    }

    long fma_iters[64];
    for (int i = 0; i < threads; i++) fma_iters[i] = 50000000;
    double t0 = now();
    run_parallel(fma_probe, fma_iters, sizeof fma_iters[0]);
    double peak = 5e7 * 10 * 16 * threads / (now() - t0) * 1e-9;

    probe_array = aligned_alloc(64, (size_t) PROBE_FLOATS * sizeof(float));
    memset(probe_array, 0, (size_t) PROBE_FLOATS * sizeof(float));
    struct read_part parts[64];
    size_t chunk = (size_t) PROBE_FLOATS / (size_t) threads / 32 * 32;
    for (int i = 0; i < threads; i++) parts[i] = (struct read_part) { (size_t) i * chunk, (size_t) (i + 1) * chunk, 0 };
    double best_read = 0;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now();
        run_parallel(read_probe, parts, sizeof parts[0]);
        double gbs = (double) chunk * (size_t) threads * sizeof(float) / (now() - t0) * 1e-9;
        if (gbs > best_read) best_read = gbs;
    }
    free(probe_array);

    size_t n = (size_t) rows * (size_t) in_dim;
    uint16_t *w = aligned_alloc(64, (n * 2 + 63) / 64 * 64);
    float *x = aligned_alloc(64, ((size_t) tokens * in_dim * 4 + 63) / 64 * 64);
    float *out = aligned_alloc(64, ((size_t) tokens * rows * 4 + 63) / 64 * 64);
    srand(1);
    for (size_t i = 0; i < n; i++) w[i] = (uint16_t) (0x3c00 + (rand() & 0x3ff)) ^ (uint16_t) ((rand() & 1) << 15);
    for (size_t i = 0; i < (size_t) tokens * in_dim; i++) x[i] = (float) rand() / (float) RAND_MAX - 0.5f;
    struct matmul_part mm[64];
    for (int i = 0; i < threads; i++) {
        mm[i] = (struct matmul_part) { w, x, out, tokens, in_dim, rows,
                                       (int) ((long) rows * i / threads), (int) ((long) rows * (i + 1) / threads) };
    }
    run_parallel(matmul_part, mm, sizeof mm[0]); /* warm-up */
    int calls = 0;
    double best = 1e30, start = now();
    while (now() - start < seconds) {
        double a = now();
        run_parallel(matmul_part, mm, sizeof mm[0]);
        double d = now() - a;
        if (d < best) best = d;
        calls++;
    }
    double mean = (now() - start) / calls;
    double flops = 2.0 * (double) n * tokens;
    printf("isa %s, %d thread(s), %s time; probes: FMA peak %.1f GFLOP/s, read %.1f GB/s\n", aya_isa_name(), threads,
           threads == 1 ? "CPU" : "wall", peak, best_read);
    printf("bf16 matmul (%s activations) %dx%d, %d token(s), %d calls: mean %.1f GFLOP/s (%.0f%% of peak), %.1f GB/s of weights (%.0f%% of read); "
           "best call %.1f GFLOP/s, %.1f GB/s\n", bf16_activations ? "bf16" : "f32", rows, in_dim, tokens, calls, flops / mean * 1e-9, 100 * flops / mean * 1e-9 / peak,
           (double) n * 2 / mean * 1e-9, 100 * (double) n * 2 / mean * 1e-9 / best_read, flops / best * 1e-9, (double) n * 2 / best * 1e-9);
    free(w); free(x); free(out);
    return 0;
}
