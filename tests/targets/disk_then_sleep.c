/* An event loop (epoll on a timerfd) with one callback that first waits on
 * the disk DISK_WAITS times (a write and an fsync each, as a cold start
 * reads files and faults pages in by the dozen), then blocks in
 * nanosleep for SLEEP_MS. Prints "ready PID", waits for a line on stdin,
 * runs the callback once and exits. */
#include <fcntl.h>
#include <time.h>

#include "tick_loop.h"

#define DISK_WAITS 16
#define SLEEP_MS 100
#define TICK_MS 20

__attribute__((noinline)) void wait_on_disk(int fd) {
    char block[4096] = {1};
    for (int i = 0; i < DISK_WAITS; i++)
        if (pwrite(fd, block, sizeof block, 0) != sizeof block || fsync(fd) != 0)
            exit(3);
}

__attribute__((noinline)) void block_after_disk(void) {
    struct timespec pause = {0, SLEEP_MS * 1000000L};
    nanosleep(&pause, NULL);
}

int main(void) {
    char path[] = "/var/tmp/disk_then_sleep.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 2;
    unlink(path);
    struct tick_loop loop = tick_loop_create();
    tick_loop_start_when_told(loop, TICK_MS);
    tick_loop_wait(loop);
    wait_on_disk(fd);
    block_after_disk();
    /* A stall ends when the loop waits again. */
    tick_loop_wait(loop);
    return 0;
}
