/*
 * guard.c: survive a weight file that shrinks under its mapping (see aya_kernels.h, "weight-file guard").
 *
 * Reading a page of a MAP_SHARED file mapping past the file's current end raises SIGBUS. Without this handler the
 * JVM dies (native kernels) or throws InternalError (Java code). With it, a fault inside a registered range maps
 * anonymous zero pages over the rest of that range, sets the range's flag and returns: the faulting load runs again
 * and reads 0. The computation then finishes on garbage, and Java, which checks the flags after each forward step,
 * throws a one-line error naming the file. Any other SIGBUS (outside our ranges, or a failed remap) goes to the
 * handler that was installed before ours: the JVM's, which knows its own faults.
 */
#define _GNU_SOURCE
#include "aya_kernels.h"

#if defined(__linux__) || defined(__APPLE__)

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_SLOTS 1024 /* mapped files alive at once: shards of every loaded model + quantized caches */

typedef struct {
    _Atomic int active;    /* 1 while start/end describe a live mapping */
    _Atomic int faulted;   /* 1 once a read in the range faulted */
    uintptr_t start, end;  /* [start, end), page-aligned outward */
} guard_slot;

static guard_slot slots[GUARD_SLOTS];
static struct sigaction previous;      /* the handler before ours (the JVM's), called for faults that are not ours */
static uintptr_t page_size;
static int installed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The previous handler, as the kernel would have called it. */
static void chain(int sig, siginfo_t *info, void *context) {
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler == SIG_IGN) {
        return;
    } else if (previous.sa_handler == SIG_DFL) {
        /* default action: die of SIGBUS, as without us */
        signal(sig, SIG_DFL);
        raise(sig);
    } else {
        previous.sa_handler(sig);
    }
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    uintptr_t addr = (uintptr_t) info->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        guard_slot *s = &slots[i];
        if (!atomic_load_explicit(&s->active, memory_order_acquire)) continue;
        if (addr < s->start || addr >= s->end) continue;
        uintptr_t page = addr & ~(page_size - 1);
        /* mmap is a plain system call on Linux and macOS, safe here; MAP_FIXED replaces the file pages in place.
         * The whole rest of the range at once: a truncated file would otherwise fault once per page. */
        void *p = mmap((void *) page, s->end - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED) {
            atomic_store_explicit(&s->faulted, 1, memory_order_release);
            return; /* the faulting instruction runs again and reads zeros */
        }
        break;
    }
    chain(sig, info, context);
}

static int install(void) {
    if (installed) return 1;
    page_size = (uintptr_t) sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) != 0) return 0;
    installed = 1;
    return 1;
}

int32_t aya_guard_add(const void *start, int64_t bytes) {
    if (start == NULL || bytes <= 0) return -1;
    pthread_mutex_lock(&lock);
    int32_t slot = -1;
    if (install()) {
        for (int i = 0; i < GUARD_SLOTS; i++) {
            if (atomic_load(&slots[i].active)) continue;
            uintptr_t a = (uintptr_t) start;
            slots[i].start = a & ~(page_size - 1);
            slots[i].end = (a + (uintptr_t) bytes + page_size - 1) & ~(page_size - 1);
            atomic_store(&slots[i].faulted, 0);
            atomic_store_explicit(&slots[i].active, 1, memory_order_release);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return slot;
}

void aya_guard_remove(int32_t slot) {
    if (slot < 0 || slot >= GUARD_SLOTS) return;
    pthread_mutex_lock(&lock);
    atomic_store_explicit(&slots[slot].active, 0, memory_order_release);
    pthread_mutex_unlock(&lock);
}

int32_t aya_guard_faulted(int32_t slot) {
    if (slot < 0 || slot >= GUARD_SLOTS) return 0;
    return atomic_load_explicit(&slots[slot].faulted, memory_order_acquire);
}

#else /* no POSIX signals: nothing is guarded, a shrunk file still crashes */

int32_t aya_guard_add(const void *start, int64_t bytes) {
    (void) start;
    (void) bytes;
    return -1;
}

void aya_guard_remove(int32_t slot) {
    (void) slot;
}

int32_t aya_guard_faulted(int32_t slot) {
    (void) slot;
    return 0;
}

#endif
