/*
 * probe.c: the memory read probe of aya_kernels.h. Plain C (no ISA flags): summing words is far faster than memory,
 * so the loop is bound by the reads, as a decode step is.
 *
 * It reads four 4 KiB rows at a time (four streams in flight) with a prefetch ~64 KiB ahead in each: the fastest of
 * the simple patterns measured here on one thread (1 GiB, alternating): a single sequential loop 19-20 GB/s, the same
 * with prefetch 15-17, four streams without prefetch 16-17, four streams with prefetch 21-22. (The decode matvec read
 * that way until it moved to four rows a quarter of the slice apart, which ran 1.02-1.13x faster in the model: the
 * bound this probe gives may then be a little low, and "% of the bound" can pass 100 on a quiet moment.)
 */
#include "aya_kernels.h"

#define PROBE_ROW_WORDS 512                 /* 4 KiB: one page, one bf16 row of Tiny Aya's 2048-wide matrices */
#define PROBE_STREAMS 4
#define PROBE_PREFETCH_WORDS (64 * 1024 / 8) /* the matvec's distance */

uint64_t aya_read_probe(const void *buf, int64_t bytes) {
    const uint64_t *w = (const uint64_t *) buf;
    int64_t words = bytes / 8;
    int64_t group = (int64_t) PROBE_STREAMS * PROBE_ROW_WORDS;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int64_t done = words / group * group;
    for (int64_t g = 0; g < done; g += group) {
        for (int64_t k = 0; k < PROBE_ROW_WORDS; k += 8) { /* one 64-byte line of each row per step */
            for (int s = 0; s < PROBE_STREAMS; s++) {
                int64_t i = g + (int64_t) s * PROBE_ROW_WORDS + k;
                if (i + PROBE_PREFETCH_WORDS < words) __builtin_prefetch(w + i + PROBE_PREFETCH_WORDS, 0, 3);
                a0 += w[i];
                a1 += w[i + 1];
                a2 += w[i + 2];
                a3 += w[i + 3];
                a4 += w[i + 4];
                a5 += w[i + 5];
                a6 += w[i + 6];
                a7 += w[i + 7];
            }
        }
    }
    for (int64_t i = done; i < words; i++) a0 += w[i]; /* a tail shorter than four rows */
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
