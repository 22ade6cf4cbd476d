/* An event loop (epoll on a timerfd that ticks every TICK_MS) whose
 * callback reads a page nobody has filled yet: a userfaultfd thread fills
 * it FAULT_MS later, so the loop thread sleeps that long in a page fault,
 * outside any syscall (as a fault that reads code or data from a slow disk
 * does). ROUNDS callbacks. Prints "ready PID", waits for a line on stdin,
 * runs and exits. */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "tick_loop.h"

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

    struct tick_loop loop = tick_loop_create();
    tick_loop_start_when_told(loop, TICK_MS);
    int sum = 0;
    for (int round = 0; round < ROUNDS; round++) {
        tick_loop_wait(loop);
        sum += read_cold_page(region + round * page);
    }
    /* A stall ends when the loop waits again. */
    tick_loop_wait(loop);
    return sum;
}
