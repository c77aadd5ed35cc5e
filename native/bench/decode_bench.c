/* decode_bench: the two kernels of a decode step next to a plain read probe, on one thread, by CPU time (the machine is
 * shared: wall time mostly measures the other jobs). Repetitions alternate probe and kernel so drifts hit both alike.
 *   - matvec: aya_matmul_bf16_f32 with one token over 1 GiB of bf16 rows of IN_DIM inputs (far beyond the caches), in
 *     slices of 11008 rows like the model's matrices, in GB/s of weights and as a fraction of the probe's GB/s;
 *   - attention: aya_attention_f32 for one token at DEPTH over 36 layers of f32 KV cache (16 heads, 4 KV heads, 128
 *     dims: Tiny Aya), in ms per token and GB/s of cache.
 * Build and run (from the repository root, after cmake -S . -B build && cmake --build build):
 *   gcc -O2 -mavx2 -mfma native/bench/decode_bench.c -Inative/include -Lbuild -laya_kernels -Wl,-rpath,build -o build/decode_bench
 *   build/decode_bench [IN_DIM [DEPTH [REPS]]]      e.g. build/decode_bench 2048 2048 5 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aya_kernels.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static volatile float sink;

/* Sums the buffer as f32 with four independent 8-lane chains: the read bandwidth one thread can reach. */
static void read_probe(const void *buf, size_t bytes) {
    const float *p = buf, *end = (const float *) ((const char *) buf + bytes);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; p + 32 <= end; p += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(p));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(p + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(p + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(p + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    sink = t[0] + t[7];
}

int main(int argc, char **argv) {
    int in_dim = argc > 1 ? atoi(argv[1]) : 2048;
    int depth = argc > 2 ? atoi(argv[2]) : 2048;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (in_dim < 32 || depth < 0 || reps < 1) {
        fprintf(stderr, "usage: decode_bench [IN_DIM >= 32 [DEPTH >= 0 [REPS >= 1]]]\n");
        return 2;
    }
    if (aya_init() != AYA_OK) {
        fprintf(stderr, "decode_bench: %s\n", aya_last_error());
        return 1;
    }

    /* matvec over 1 GiB of rows */
    enum { SLICE = 11008 };
    size_t row_bytes = (size_t) in_dim * 2;
    size_t rows = ((size_t) 1 << 30) / row_bytes / SLICE * SLICE;
    size_t bytes = rows * row_bytes;
    uint16_t *w = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    float *x = aligned_alloc(64, (size_t) in_dim * sizeof(float));
    float *out = aligned_alloc(64, rows * sizeof(float));
    if (w == NULL || x == NULL || out == NULL) {
        fprintf(stderr, "decode_bench: out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < bytes / 2; i++) w[i] = (uint16_t) (0x3c00 + (rand() & 0x3ff)) ^ (uint16_t) ((rand() & 1) << 15);
    for (int i = 0; i < in_dim; i++) x[i] = (float) rand() / (float) RAND_MAX - 0.5f;
    double probe_sum = 0, kernel_sum = 0, probe_best = 0, kernel_best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        read_probe(w, bytes);
        double probe = (double) bytes / (cpu_now() - t0) * 1e-9;
        t0 = cpu_now();
        for (size_t m = 0; m < rows; m += SLICE) {
            aya_matmul_bf16_f32(w + m * (size_t) in_dim, x, out + m, 1, in_dim, SLICE, 0, SLICE);
        }
        double kernel = (double) bytes / (cpu_now() - t0) * 1e-9;
        probe_sum += probe;
        kernel_sum += kernel;
        if (probe > probe_best) probe_best = probe;
        if (kernel > kernel_best) kernel_best = kernel;
    }
    printf("isa %s, 1 thread, CPU time, %d reps\n", aya_isa_name(), reps);
    printf("read probe:  mean %.1f GB/s, best %.1f\n", probe_sum / reps, probe_best);
    printf("bf16 matvec %zu x %d: mean %.1f GB/s of weights, best %.1f: %.0f%% of the probe (mean / mean)\n", rows,
           in_dim, kernel_sum / reps, kernel_best, 100 * kernel_sum / probe_sum);
    free(w);
    free(out);
    free(x);

    /* attention of one token at depth over 36 layers */
    enum { LAYERS = 36, HEADS = 16, KV_HEADS = 4, HEAD_DIM = 128 };
    int capacity = depth + 1;
    size_t kv_floats = (size_t) capacity * KV_HEADS * HEAD_DIM;
    float *keys[LAYERS], *values[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        keys[l] = aligned_alloc(64, kv_floats * sizeof(float));
        values[l] = aligned_alloc(64, kv_floats * sizeof(float));
        if (keys[l] == NULL || values[l] == NULL) {
            fprintf(stderr, "decode_bench: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < kv_floats; i++) {
            keys[l][i] = (float) rand() / (float) RAND_MAX - 0.5f;
            values[l][i] = (float) rand() / (float) RAND_MAX - 0.5f;
        }
    }
    float q[HEADS * HEAD_DIM], o[HEADS * HEAD_DIM];
    float *scratch = malloc((size_t) capacity * sizeof(float));
    for (int i = 0; i < HEADS * HEAD_DIM; i++) q[i] = (float) rand() / (float) RAND_MAX - 0.5f;
    double best = 1e30, sum = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = cpu_now();
        for (int l = 0; l < LAYERS; l++) {
            aya_attention_f32(q, keys[l], values[l], o, 1, depth, HEADS, KV_HEADS, HEAD_DIM, capacity, 0,
                              0.0883883f, scratch, 0, HEADS);
        }
        double s = cpu_now() - t0;
        sum += s;
        if (s < best) best = s;
    }
    double kv_bytes = (double) LAYERS * 2 * kv_floats * sizeof(float);
    printf("attention at depth %d, 36 layers: mean %.2f ms per token, best %.2f (%.1f GB/s of f32 KV cache)\n", depth,
           sum / reps * 1e3, best * 1e3, kv_bytes / best * 1e-9);
    for (int l = 0; l < LAYERS; l++) {
        free(keys[l]);
        free(values[l]);
    }
    free(scratch);
    return 0;
}
