/* An event loop (epoll on a timerfd) with one callback that first waits on
 * the disk DISK_WAITS times (a write and an fsync each, as a cold start
 * reads files and faults pages in by the dozen), then blocks in
 * nanosleep for SLEEP_MS. Prints "ready PID", waits for a line on stdin,
 * runs the callback once, waits once more and exits. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

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
    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int loop = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ready = {.events = EPOLLIN, .data.fd = timer};
    if (fd < 0 || timer < 0 || loop < 0 || epoll_ctl(loop, EPOLL_CTL_ADD, timer, &ready) != 0)
        return 2;
    unlink(path);

    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    struct itimerspec every = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
    timerfd_settime(timer, 0, &every, NULL);
    for (int round = 0; round < 2;) {
        struct epoll_event got;
        uint64_t ticks;
        if (epoll_wait(loop, &got, 1, -1) != 1 || read(timer, &ticks, sizeof ticks) < 0)
            continue;
        if (round == 0) {
            wait_on_disk(fd);
            block_after_disk();
        }
        round++;
    }
    return 0;
}
