/* An SD card's fsync on any disk: LD_PRELOAD this to make every fsync and fdatasync of a
 * process take GATEWAYD_BENCH_FSYNC_DELAY_US microseconds longer (default 5000).
 * bench/run.py compiles it with the system's cc at run time:
 *     cc -shared -fPIC -O2 -o slow_fsync.so bench/slow_fsync.c -ldl
 * The delay comes after the real call, so the data is on disk when the caller goes on. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us = -1;

static void slow_down(void) {
    if (delay_us < 0) {
        const char *env = getenv("GATEWAYD_BENCH_FSYNC_DELAY_US");
        delay_us = env ? atol(env) : 5000;
    }
    struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int fsync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int rc = real(fd);
    slow_down();
    return rc;
}

int fdatasync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int rc = real(fd);
    slow_down();
    return rc;
}
