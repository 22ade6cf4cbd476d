/* An event loop (epoll on a timerfd that ticks every TICK_MS) whose
 * callback reads a page nobody has filled yet: a userfaultfd thread fills
 * it FAULT_MS later, so the loop thread sleeps that long in a page fault,
 * outside any syscall (as a fault that reads code or data from a slow disk
 * does). ROUNDS callbacks. Prints "ready PID", waits for a line on stdin,
 * runs and exits. */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 3
#define FAULT_MS 150
#define TICK_MS 20

static int uffd;
static long page;

/* Fills each missing page with zeros, FAULT_MS after it was asked for. */
static void *fill_pages_late(void *unused) {
    struct uffd_msg msg;
    (void)unused;
    while (read(uffd, &msg, sizeof msg) == sizeof msg) {
        if (msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        struct timespec delay = {0, FAULT_MS * 1000000L};
        nanosleep(&delay, NULL);
        struct uffdio_zeropage zero = {
            .range = {.start = msg.arg.pagefault.address & ~(page - 1), .len = page}};
        if (ioctl(uffd, UFFDIO_ZEROPAGE, &zero) != 0)
            exit(3);
    }
    return NULL;
}

__attribute__((noinline)) int read_cold_page(volatile char *p) {
    return *p;
}

int main(void) {
    page = sysconf(_SC_PAGESIZE);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = {.api = UFFD_API};
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0)
        return 1;
    char *region = mmap(NULL, ROUNDS * page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct uffdio_register missing = {
        .range = {.start = (uintptr_t)region, .len = ROUNDS * page},
        .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (region == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &missing) != 0)
        return 2;
    pthread_t filler;
    if (pthread_create(&filler, NULL, fill_pages_late, NULL) != 0)
        return 2;

    int timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int loop = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ready = {.events = EPOLLIN, .data.fd = timer};
    if (timer < 0 || loop < 0 || epoll_ctl(loop, EPOLL_CTL_ADD, timer, &ready) != 0)
        return 2;

    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    struct itimerspec every = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
    timerfd_settime(timer, 0, &every, NULL);
    /* One callback more, so that the loop waits again after the last fault
     * (a stall ends when the loop waits). */
    int sum = 0;
    for (int round = 0; round <= ROUNDS;) {
        struct epoll_event got;
        uint64_t ticks;
        if (epoll_wait(loop, &got, 1, -1) != 1 || read(timer, &ticks, sizeof ticks) < 0)
            continue;
        if (round < ROUNDS)
            sum += read_cold_page(region + round * page);
        round++;
    }
    return sum;
}
