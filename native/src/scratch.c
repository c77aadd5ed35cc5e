/*
 * scratch.c: per-thread scratch buffers of the kernels (packed GEMM panels, rounded or quantized activations).
 *
 * A buffer is kept from one call to the next on the same thread (Java's pool threads call thousands of times per
 * token) and freed when the thread exits, through a pthread key destructor. A plain _Thread_local pointer would leak
 * its buffer with every thread that ends: a Java program making a thread per request would lose ~12 MB of packed
 * activations each time.
 */
#include <stdlib.h>

#include "kernels_internal.h"

typedef struct {
    void *buffer[AYA_SCRATCH_SLOTS];
    size_t capacity[AYA_SCRATCH_SLOTS];
} scratch_set;

#if defined(_WIN32)

/* No pthread keys: buffers live as long as the thread and are not freed when it ends. */
static _Thread_local scratch_set windows_set;
static scratch_set *thread_set(void) { return &windows_set; }

#else

#include <pthread.h>

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;

static void free_set(void *p) {
    scratch_set *s = p;
    for (int i = 0; i < AYA_SCRATCH_SLOTS; i++) free(s->buffer[i]);
    free(s);
}

static void make_key(void) {
    key_ok = pthread_key_create(&key, free_set) == 0;
}

static scratch_set *thread_set(void) {
    pthread_once(&once, make_key);
    if (!key_ok) return NULL;
    scratch_set *s = pthread_getspecific(key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) return NULL;
        if (pthread_setspecific(key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    return s;
}

#endif

void *aya_scratch(int slot, size_t bytes) {
    scratch_set *s = thread_set();
    if (s == NULL || slot < 0 || slot >= AYA_SCRATCH_SLOTS) return NULL;
    if (bytes > s->capacity[slot] || s->buffer[slot] == NULL) {
        size_t rounded = (bytes + 63) / 64 * 64;
        if (rounded == 0) rounded = 64;
        free(s->buffer[slot]);
        s->capacity[slot] = 0;
        s->buffer[slot] = aligned_alloc(64, rounded);
        if (s->buffer[slot] == NULL) return NULL;
        s->capacity[slot] = rounded;
    }
    return s->buffer[slot];
}
