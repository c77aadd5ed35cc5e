/* Q8_0 / Q4_0 / Q4_K / Q6_K / bf16 (f32 activations) kernel speed on one thread, by thread CPU time (robust on a shared
 * machine). Not a test: run by hand,
 *   build/bench_quant [isa] [MB] [tokens] [threads]
 * Decode: one token against a weight matrix of MB megabytes (default 512, more than any cache), reported as GB/s of
 * weight bytes per CPU-second next to a plain read of the same bytes (Q6_K: the output head of llama-quantize's Q4_0
 * files). Prefill: 2048 x 2048 and 1024 x 11008 weights x `tokens` (default 128), in GFLOP/s (2 per multiply-add).
 * With threads > 1, decode only, by wall clock: the threads take pieces of rows from a shared counter, 4 per thread,
 * as the model's decode does (aya.kernels.Parallel), and the read probe reads with as many threads. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "test_util.h"

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

typedef void (*matmul_q)(const void *, const float *, float *, int32_t, int32_t, int32_t, int32_t, int32_t);

/* rows of random blocks of block_values values in block_bytes, each with the f16 scale 2^-7 at scale_at; scale_at < 0:
 * bf16 values (one per 2-byte block) */
static uint8_t *random_blocks(size_t rows, int in_dim, int block_values, int block_bytes, int scale_at) {
    size_t row_bytes = (size_t) in_dim / block_values * block_bytes, n = rows * row_bytes;
    if (scale_at < 0) return (uint8_t *) random_weights16(n / 2, 0);
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i += 4) {
        uint32_t r = rng_next();
        memcpy(w + i, &r, n - i < 4 ? n - i : 4);
    }
    for (size_t b = 0; b < n; b += block_bytes) { w[b + scale_at] = 0; w[b + scale_at + 1] = 0x20; }
    return w;
}

/* Best of `reps` CPU-seconds for fn. */
#define BEST_OF(reps, seconds, ...)                                                                                   \
    do {                                                                                                               \
        seconds = 1e30;                                                                                                \
        for (int rep_ = 0; rep_ < (reps); rep_++) {                                                                    \
            double t0_ = cpu_seconds();                                                                                \
            __VA_ARGS__;                                                                                                    \
            double dt_ = cpu_seconds() - t0_;                                                                          \
            if (dt_ < seconds) seconds = dt_;                                                                          \
        }                                                                                                              \
    } while (0)

static double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* One decode (or one read of the probe when fn is NULL) shared by threads: pieces of `piece` rows from a counter. */
typedef struct {
    matmul_q fn;
    const uint8_t *w;
    const float *x;
    float *out;
    int32_t in_dim, rows, piece;
    size_t row_bytes;
    atomic_int next;
    uint64_t sum;
} decode_job;

static void *decode_worker(void *arg) {
    decode_job *job = arg;
    uint64_t sum = 0;
    for (;;) {
        int32_t start = atomic_fetch_add(&job->next, job->piece);
        if (start >= job->rows) break;
        int32_t end = start + job->piece < job->rows ? start + job->piece : job->rows;
        if (job->fn != NULL) {
            job->fn(job->w, job->x, job->out, 1, job->in_dim, job->rows, start, end);
        } else {
            const uint64_t *p = (const uint64_t *) (job->w + (size_t) start * job->row_bytes);
            size_t words = (size_t) (end - start) * job->row_bytes / 8;
            uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (size_t i = 0; i + 4 <= words; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
            sum += s0 + s1 + s2 + s3;
        }
    }
    job->sum += sum; /* only read after every thread joined; a race on it only changes the sink */
    return NULL;
}

/* Best of 5 wall-clock GB/s of `threads` threads running one decode (fn) or one read (fn NULL) of rows x row_bytes. */
static double threaded_gbs(int threads, matmul_q fn, const uint8_t *w, size_t row_bytes, int32_t rows, int32_t in_dim,
                           const float *x, float *out) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        decode_job job = { fn, w, x, out, in_dim, rows, (rows + 4 * threads - 1) / (4 * threads), row_bytes, 0, 0 };
        pthread_t tid[64];
        double t0 = wall_seconds();
        for (int i = 1; i < threads; i++) pthread_create(&tid[i], NULL, decode_worker, &job);
        decode_worker(&job);
        for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
        double gbs = (double) rows * (double) row_bytes / (wall_seconds() - t0) * 1e-9;
        if (gbs > best) best = gbs;
        if (job.sum == 42) printf(" "); /* keeps the probe's reads */
    }
    return best;
}

/* bf16 weights, f32 activations (the exact decode), in the quantized kernels' signature */
static void matmul_bf16(const void *w, const float *x, float *out, int32_t tokens, int32_t in_dim, int32_t out_stride,
                        int32_t row_start, int32_t row_end) {
    aya_matmul_bf16_f32((const uint16_t *) w, x, out, tokens, in_dim, out_stride, row_start, row_end);
}

int main(int argc, char **argv) {
    const char *isa = argc > 1 ? argv[1] : "auto";
    size_t mb = argc > 2 ? (size_t) atol(argv[2]) : 512;
    int tokens = argc > 3 ? atoi(argv[3]) : 128;
    int threads = argc > 4 ? atoi(argv[4]) : 1;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "bench_quant: threads must be 1..64, got %d\n", threads);
        return 2;
    }
    if (aya_set_isa(isa) != AYA_OK) {
        fprintf(stderr, "bench_quant: %s\n", aya_last_error());
        return 2;
    }
    printf("isa %s, %d thread%s\n", aya_isa_name(), threads, threads > 1 ? "s (wall clock)" : "");
    const int in_dim = 2048;
    enum { TYPES = 5 };
    const char *names[TYPES] = { "q8_0", "q4_0", "q4_k", "q6_k", "bf16" };
    const int block_values[TYPES] = { 32, 32, 256, 256, 1 }, block_bytes[TYPES] = { 34, 18, 144, 210, 2 };
    const int scale_at[TYPES] = { 0, 0, 0, 208, -1 }; /* Q4_K: d (dmin stays random) */
    matmul_q fns[TYPES] = { aya_matmul_q8_0_f32, aya_matmul_q4_0_f32, aya_matmul_q4_k_f32, aya_matmul_q6_k_f32,
                            matmul_bf16 };
    if (threads > 1) {
        for (int k = 0; k < TYPES; k++) {
            size_t row_bytes = (size_t) in_dim / block_values[k] * block_bytes[k], rows = (mb << 20) / row_bytes;
            uint8_t *w = random_blocks(rows, in_dim, block_values[k], block_bytes[k], scale_at[k]);
            float *x = random_floats(in_dim, -1, 1), *out = malloc(rows * sizeof(float));
            double probe = threaded_gbs(threads, NULL, w, row_bytes, (int32_t) rows, in_dim, x, out);
            double decode = threaded_gbs(threads, fns[k], w, row_bytes, (int32_t) rows, in_dim, x, out);
            printf("decode  %s          %7.2f GB/s of weights (%zu x %d), read probe %.2f GB/s: %.0f%%\n", names[k],
                   decode, rows, in_dim, probe, 100 * decode / probe);
            free(w); free(x); free(out);
        }
        return 0;
    }

    /* read probe: the same number of bytes, summed as 64-bit words */
    size_t bytes = mb << 20;
    uint64_t *probe = malloc(bytes);
    memset(probe, 1, bytes);
    volatile uint64_t sink = 0;
    double seconds;
    BEST_OF(3, seconds, {
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < bytes / 8; i += 4) { s0 += probe[i]; s1 += probe[i + 1]; s2 += probe[i + 2]; s3 += probe[i + 3]; }
        sink += s0 + s1 + s2 + s3;
    });
    printf("read probe           %7.2f GB/s\n", (double) bytes / seconds * 1e-9);
    free(probe);

    for (int k = 0; k < TYPES; k++) {
        size_t row_bytes = (size_t) in_dim / block_values[k] * block_bytes[k], rows = bytes / row_bytes;
        uint8_t *w = random_blocks(rows, in_dim, block_values[k], block_bytes[k], scale_at[k]);
        float *x = random_floats(in_dim, -1, 1), *out = malloc(rows * sizeof(float));
        BEST_OF(3, seconds, fns[k](w, x, out, 1, in_dim, (int32_t) rows, 0, (int32_t) rows));
        printf("decode  %s          %7.2f GB/s of weights (%zu x %d)\n", names[k],
               (double) (rows * row_bytes) / seconds * 1e-9, rows, in_dim);
        free(w); free(x); free(out);
    }
    /* the shapes of Tiny Aya's prefill: q/o/gate/up (2048 inputs) and down (11008 inputs; a thread's half of it) */
    const int prefill_dims[2][2] = { { 2048, 2048 }, { 1024, 11008 } }; /* rows, in_dim */
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < TYPES; k++) {
            const int rows = prefill_dims[s][0], dim = prefill_dims[s][1];
            uint8_t *w = random_blocks(rows, dim, block_values[k], block_bytes[k], scale_at[k]);
            float *x = random_floats((size_t) tokens * dim, -1, 1);
            float *out = malloc((size_t) tokens * rows * sizeof(float));
            BEST_OF(3, seconds, fns[k](w, x, out, tokens, dim, rows, 0, rows));
            printf("prefill %s          %7.2f GFLOP/s (%d x %d, %d tokens)\n", names[k],
                   2.0 * rows * dim * tokens / seconds * 1e-9, rows, dim, tokens);
            free(w); free(x); free(out);
        }
    return 0;
}
