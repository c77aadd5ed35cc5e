/* The weight-file guard: a mapped file truncated under its mapping reads as zeros instead of raising SIGBUS, the
 * range is marked, untouched pages keep their data, and a SIGBUS outside every guarded range still reaches the
 * handler installed before the guard's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"

static sigjmp_buf escape;
static volatile sig_atomic_t earlier_handler_calls = 0;

static void earlier_handler(int sig) {
    (void) sig;
    earlier_handler_calls++;
    siglongjmp(escape, 1);
}

/* A file of `pages` pages, page i filled with byte i + 1, mapped shared read-only. */
static unsigned char * map_file(const char *path, long page, int pages, int *fd) {
    *fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(*fd >= 0, "open %s", path);
    for (int i = 0; i < pages; i++) {
        unsigned char buf[65536];
        memset(buf, i + 1, (size_t) page);
        CHECK(write(*fd, buf, (size_t) page) == page, "write");
    }
    void *m = mmap(NULL, (size_t) (page * pages), PROT_READ, MAP_SHARED, *fd, 0);
    CHECK(m != MAP_FAILED, "mmap");
    return m;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    if (page > 65536) {
        printf("test_guard: page size %ld not covered\n", page);
        return 0;
    }
    char path[] = "/tmp/aya_test_guard_XXXXXX";
    int tmp = mkstemp(path);
    CHECK(tmp >= 0, "mkstemp");
    close(tmp);

    /* a handler installed before the guard's (the JVM's, in the real program) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = earlier_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);

    int fd;
    unsigned char *m = map_file(path, page, 4, &fd);
    int32_t slot = aya_guard_add(m + 10, 4 * page - 20); /* unaligned range: covers the pages it touches */
    CHECK(slot >= 0, "aya_guard_add: %d", slot);
    CHECK(aya_guard_faulted(slot) == 0, "not faulted yet");
    CHECK(m[2 * page] == 3, "page 2 before truncation: %d", m[2 * page]);

    CHECK(ftruncate(fd, page + 7) == 0, "ftruncate"); /* pages 2 and 3 are gone */
    volatile unsigned char *v = m;
    CHECK(v[0] == 1 && v[page] == 2, "the pages still in the file keep their data");
    CHECK(aya_guard_faulted(slot) == 0, "reading kept pages is no fault");
    CHECK(v[3 * page + 5] == 0, "a lost page reads as zero: %d", v[3 * page + 5]);
    CHECK(aya_guard_faulted(slot) == 1, "the fault is recorded");
    CHECK(v[2 * page] == 0, "the rest of the range reads as zero too");
    CHECK(earlier_handler_calls == 0, "faults in a guarded range stay with the guard");
    aya_guard_remove(slot);
    CHECK(aya_guard_faulted(-1) == 0 && aya_guard_faulted(1 << 20) == 0, "bad slots are never faulted");
    munmap(m, (size_t) (4 * page));
    close(fd);

    /* a truncated mapping nobody registered: the fault is passed on to the earlier handler */
    m = map_file(path, page, 2, &fd);
    CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    static volatile int read_returned = 0; /* volatile: the compiler must not move it before the faulting read */
    static volatile unsigned char *volatile w;
    w = m;
    if (sigsetjmp(escape, 1) == 0) {
        unsigned char x = w[page];
        read_returned = 1 + x;
    }
    CHECK(read_returned == 0, "a read of a lost unguarded page returned");
    CHECK(earlier_handler_calls == 1, "the earlier handler got the unguarded fault: %d", (int) earlier_handler_calls);
    munmap(m, (size_t) (2 * page));
    close(fd);
    unlink(path);

    CHECK(aya_guard_add(NULL, 10) == -1 && aya_guard_add(path, 0) == -1, "bad ranges are refused");
    if (failures) return 1;
    printf("test_guard: ok\n");
    return 0;
}
