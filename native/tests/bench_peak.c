/* The multiply-add peak of one core for each instruction mix the kernels are built on, so that a kernel's GFLOP/s can be
 * read as a fraction of what its instructions allow on this CPU (docs/performance.md, "What the targets need").
 * Not a test: run by hand,
 *   build/bench_peak [rounds]
 * Each mix runs 16 (256-bit: 12) independent accumulator chains (enough to hide every latency here) for ~0.1 s of thread CPU time;
 * the best of `rounds` (default 8) is printed, as multiply-adds per second and as GFLOP/s (2 per multiply-add). The
 * AVX-512 mixes run only where the CPU has them. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 16 /* 512-bit: 16 of the 32 registers */
#define CHAINS_YMM 12 /* 256-bit: 12 of AVX2's 16 registers, room for the constants (more would spill) */
#define STEPS 20000000L /* per chain */

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Keeps a result alive without printing it. */
static volatile float sink_f;
static volatile int sink_i;

/* Each mix returns multiply-adds per second. */

__attribute__((target("avx2,fma"))) static double fma_ymm(void) {
    __m256 a[CHAINS_YMM], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-9f);
    for (int i = 0; i < CHAINS_YMM; i++) a[i] = _mm256_set1_ps((float) i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS_YMM; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS_YMM; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    sink_f = _mm256_cvtss_f32(a[0]);
    return (double) STEPS * CHAINS_YMM * 8 / t;
}

/* AVX2's int8 dot product as native's AVX2 Q4_0 kernel uses it: vpmaddubsw (u8 x s8 pairs to s16), vpmaddwd (pairs to
 * s32), vpaddd: three operations per 32 multiply-adds. */
__attribute__((target("avx2,fma"))) static double maddubs_ymm(void) {
    __m256i a[CHAINS_YMM], c = _mm256_set1_epi8(5), one = _mm256_set1_epi16(1);
    for (int i = 0; i < CHAINS_YMM; i++) a[i] = _mm256_set1_epi32(i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS_YMM; i++)
            a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a[i], c), one));
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS_YMM; i++) a[0] = _mm256_add_epi32(a[0], a[i]);
    sink_i = _mm256_cvtsi256_si32(a[0]);
    return (double) STEPS * CHAINS_YMM * 32 / t;
}

/* AVX2's Q8_0 x Q8_0 dot product as native's AVX2 Q8_0 kernels use it: the weights' signs moved onto the activations
 * (vpsignb), then vpmaddubsw (|w| x signed x), vpmaddwd, vpaddd: four operations per 32 multiply-adds (two vpmaddubsw
 * results of |w| <= 128 and |x| <= 127 do not add up in 16 bits, so each needs its own vpmaddwd). */
__attribute__((target("avx2,fma"))) static double sign_maddubs_ymm(void) {
    __m256i a[CHAINS_YMM], c = _mm256_set1_epi8(5), s = _mm256_set1_epi8(-3), one = _mm256_set1_epi16(1);
    for (int i = 0; i < CHAINS_YMM; i++) a[i] = _mm256_set1_epi32(i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS_YMM; i++)
            a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(c, _mm256_sign_epi8(a[i], s)), one));
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS_YMM; i++) a[0] = _mm256_add_epi32(a[0], a[i]);
    sink_i = _mm256_cvtsi256_si32(a[0]);
    return (double) STEPS * CHAINS_YMM * 32 / t;
}

__attribute__((target("avx512f"))) static double fma_zmm(void) {
    __m512 a[CHAINS], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float) i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    sink_f = _mm512_cvtss_f32(a[0]);
    return (double) STEPS * CHAINS * 16 / t;
}

/* What the Java Vector API can do with 16-bit integers: ShortVector.mul + add (vpmullw, vpaddw), 32 per pair. */
__attribute__((target("avx512f,avx512bw"))) static double mullw_zmm(void) {
    __m512i a[CHAINS], b = _mm512_set1_epi16(3);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_epi16((short) i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_add_epi16(a[i], _mm512_mullo_epi16(a[i], b));
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_epi16(a[0], a[i]);
    sink_i = _mm_cvtsi128_si32(_mm512_castsi512_si128(a[0]));
    return (double) STEPS * CHAINS * 32 / t;
}

/* Native's AVX-512 Q8_0 / Q4_0 products: vpdpbusd, 64 multiply-adds into 16 int32 lanes. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double dpbusd_zmm(void) {
    __m512i a[CHAINS], b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_epi32(i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_epi32(a[0], a[i]);
    sink_i = _mm_cvtsi128_si32(_mm512_castsi512_si128(a[0]));
    return (double) STEPS * CHAINS * 64 / t;
}

/* Native's --activations bf16 products: vdpbf16ps, 32 bf16 multiply-adds into 16 f32 lanes. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static double dpbf16_zmm(void) {
    __m512 a[CHAINS];
    __m512bh b = (__m512bh) _mm512_set1_epi16(0x3f80); /* 1.0 */
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float) i);
    double t = cpu_seconds();
    for (long n = 0; n < STEPS; n++)
        _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbf16_ps(a[i], b, b);
    t = cpu_seconds() - t;
    for (int i = 1; i < CHAINS; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    sink_f = _mm512_cvtss_f32(a[0]);
    return (double) STEPS * CHAINS * 32 / t;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    if (rounds < 1) {
        fprintf(stderr, "bench_peak: rounds must be a positive integer, got '%s'\n", argv[1]);
        return 2;
    }
    __builtin_cpu_init();
    struct { const char *name; double (*fn)(void); int ok; } mixes[] = {
        {"f32 FMA, 256-bit (vfmadd231ps ymm)", fma_ymm, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"int8 vpmaddubsw + vpmaddwd + vpaddd, 256-bit", maddubs_ymm, __builtin_cpu_supports("avx2")},
        {"int8 vpsignb + vpmaddubsw + vpmaddwd + vpaddd, 256-bit", sign_maddubs_ymm, __builtin_cpu_supports("avx2")},
        {"f32 FMA, 512-bit (vfmadd231ps zmm)", fma_zmm, __builtin_cpu_supports("avx512f")},
        {"int16 vpmullw + vpaddw, 512-bit", mullw_zmm, __builtin_cpu_supports("avx512bw")},
        {"int8 vpdpbusd, 512-bit", dpbusd_zmm, __builtin_cpu_supports("avx512vnni")},
        {"bf16 vdpbf16ps, 512-bit", dpbf16_zmm, __builtin_cpu_supports("avx512bf16")},
    };
    printf("| instruction mix | multiply-adds / s, one core | GFLOP/s |\n|---|---|---|\n");
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        if (!mixes[m].ok) {
            printf("| %s | (not on this CPU) | |\n", mixes[m].name);
            continue;
        }
        double best = 0;
        for (int r = 0; r < rounds; r++) {
            double v = mixes[m].fn();
            if (v > best) best = v;
        }
        printf("| %s | %.0f G | %.0f |\n", mixes[m].name, best / 1e9, 2 * best / 1e9);
    }
    return 0;
}
