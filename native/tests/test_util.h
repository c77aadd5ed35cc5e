/* Tiny test helpers: a seeded generator, weight encoders, tolerant comparison, and the list of ISAs to check. */
#ifndef AYA_TEST_UTIL_H
#define AYA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aya_kernels.h"

static int failures = 0;

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            failures++;                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                   \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, "\n");                                                 \
        }                                                                          \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint32_t rng_next(void) { /* xorshift64*: deterministic across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t) ((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static inline float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float) (rng_next() >> 8) / 16777216.0f;
}

static inline float * random_floats(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof(float) + 1); /* +1: never malloc(0) */
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform(lo, hi);
    return v;
}

/* f32 -> bf16 by round-to-nearest-even (finite inputs). */
static inline uint16_t to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t) (bits >> 16);
}

/* Random f16 bit patterns: normals in about [2^-8, 2^4] plus some subnormals, both signs. */
static inline uint16_t random_f16(void) {
    uint32_t r = rng_next();
    uint16_t sign = (uint16_t) ((r & 1u) << 15);
    uint16_t mant = (uint16_t) ((r >> 1) & 0x3ffu);
    uint16_t exp = (r >> 11) % 16 == 0 ? 0 : (uint16_t) (7 + (r >> 16) % 12);
    return (uint16_t) (sign | (exp << 10) | mant);
}

static inline uint16_t * random_weights16(size_t n, int f16) {
    uint16_t *v = malloc(n * sizeof(uint16_t) + 1);
    for (size_t i = 0; i < n; i++) v[i] = f16 ? random_f16() : to_bf16(rng_uniform(-2.0f, 2.0f));
    return v;
}

/* |a - b| <= rel * scale + abs_tol, where scale is the size of what was summed. */
static inline int close_enough(float a, float b, double scale, double rel, double abs_tol) {
    return fabs((double) a - (double) b) <= rel * scale + abs_tol;
}

/* The ISAs this machine can run besides scalar (each is compared with scalar). */
static const char *const simd_isas[] = { "avx2", "avx512", "neon" };
#define SIMD_ISA_COUNT 3

static inline int use_isa(const char *name) {
    int status = aya_set_isa(name);
    if (status != AYA_OK) {
        fprintf(stderr, "FAIL: aya_set_isa(%s) = %d: %s\n", name, status, aya_last_error());
        failures++;
        return 0;
    }
    return 1;
}

static inline int finish(const char *name) {
    if (failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
