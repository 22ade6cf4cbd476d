/* The event loop of the C test targets: epoll on a timerfd that ticks every
 * tick_ms once started. A callback runs between two waits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct tick_loop {
    int epoll;
    int timer;
};

/* The loop, not ticking yet; exits with 2 if it cannot be made. */
static struct tick_loop tick_loop_create(void) {
    struct tick_loop loop = {epoll_create1(EPOLL_CLOEXEC),
                             timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)};
    struct epoll_event ready = {.events = EPOLLIN, .data.fd = loop.timer};
    if (loop.epoll < 0 || loop.timer < 0 ||
        epoll_ctl(loop.epoll, EPOLL_CTL_ADD, loop.timer, &ready) != 0)
        exit(2);
    return loop;
}

/* Prints "ready PID", waits for a line on stdin (a tracer attaches), then
 * starts the ticks. */
static void tick_loop_start_when_told(struct tick_loop loop, long tick_ms) {
    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        exit(1);
    struct itimerspec every = {{0, tick_ms * 1000000L}, {0, tick_ms * 1000000L}};
    timerfd_settime(loop.timer, 0, &every, NULL);
}

/* The loop's idle wait: returns at the next tick. */
static void tick_loop_wait(struct tick_loop loop) {
    for (;;) {
        struct epoll_event got;
        uint64_t ticks;
        if (epoll_wait(loop.epoll, &got, 1, -1) == 1 &&
            read(loop.timer, &ticks, sizeof ticks) == sizeof ticks)
            return;
    }
}
