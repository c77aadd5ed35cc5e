/* Per-thread scratch (native/src/scratch.c): sizes and alignment, kept between calls, and freed when a thread ends:
 * 64 threads each taking 8 MiB must not leave 512 MiB behind (glibc's mallinfo2 counts mmapped blocks). */
#define _GNU_SOURCE
#include <pthread.h>

#include "kernels_internal.h"
#include "test_util.h"

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#include <malloc.h>
#define HAVE_MALLINFO2 (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#else
#define HAVE_MALLINFO2 0
#endif

#define BIG (8u << 20)

static void *take_big(void *arg) {
    (void) arg;
    unsigned char *p = aya_scratch(AYA_SCRATCH_GEMM_X, BIG);
    if (p != NULL) memset(p, 1, BIG);
    return p;
}

int main(void) {
    void *a = aya_scratch(AYA_SCRATCH_GEMM_W, 100);
    CHECK(a != NULL && (uintptr_t) a % 64 == 0, "aligned buffer");
    CHECK(aya_scratch(AYA_SCRATCH_GEMM_W, 64) == a, "a smaller request reuses the buffer");
    void *b = aya_scratch(AYA_SCRATCH_GEMM_C, 100);
    CHECK(b != NULL && b != a, "slots are separate");
    CHECK(aya_scratch(AYA_SCRATCH_SLOTS, 8) == NULL && aya_scratch(-1, 8) == NULL, "bad slots refused");

    pthread_t t;
    void *other = NULL;
    pthread_create(&t, NULL, take_big, NULL);
    pthread_join(t, &other);
    CHECK(other != NULL && other != aya_scratch(AYA_SCRATCH_GEMM_X, 64), "another thread has its own buffer");
#if HAVE_MALLINFO2
    size_t before = mallinfo2().hblkhd;
    for (int i = 0; i < 64; i++) {
        pthread_create(&t, NULL, take_big, NULL);
        pthread_join(t, NULL);
    }
    size_t after = mallinfo2().hblkhd;
    CHECK(after < before + 4 * (size_t) BIG, "64 threads of 8 MiB scratch left %zu bytes mapped (was %zu)", after, before);
#else
    printf("test_scratch: no mallinfo2 here (or ASan): the freeing check is skipped\n");
#endif
    return finish("test_scratch");
}
