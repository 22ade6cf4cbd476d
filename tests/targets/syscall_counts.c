/* Makes exact numbers of syscalls, then one blocking call three functions
 * deep, so the tracer's counts and stacks can be checked against what it did.
 * Built with -O2 -fomit-frame-pointer: no frame pointers to walk.
 *
 * Prints "ready PID", waits for a line on stdin (the tracer attaches
 * meanwhile), then: 1000 getppid, 37 failing close(-1), and nanosleep(150 ms)
 * from main -> outer_call -> middle_call -> inner_sleep. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define GETPPID_CALLS 1000
#define FAILING_CLOSES 37

__attribute__((noinline)) void inner_sleep(void) {
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    __asm__ volatile("" ::: "memory"); /* keep the call from becoming a tail call */
}

__attribute__((noinline)) void middle_call(void) {
    inner_sleep();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void outer_call(void) {
    middle_call();
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    for (int i = 0; i < GETPPID_CALLS; i++)
        getppid();
    for (int i = 0; i < FAILING_CLOSES; i++)
        close(-1);
    outer_call();
    return 0;
}
