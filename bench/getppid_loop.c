/* The syscall-cost benchmark's target (cargo xtask bench): N getppid() calls
 * (argv[1], default 2,000,000). getppid is the cheapest real syscall: no
 * arguments, no locks, never cached by libc, so the loop measures the
 * syscall path itself.
 *
 * Prints "ready PID", then waits for a line on stdin so that a tracer can
 * attach first (EOF instead of a line: exit without looping), then prints
 * "ns_per_call WALL CPU": nanoseconds per call from the wall clock, and from
 * the thread's CPU time, which other processes sharing the core do not
 * inflate (but which misses the time strace keeps the loop stopped). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double elapsed_ns(const struct timespec *from, const struct timespec *to) {
    return (to->tv_sec - from->tv_sec) * 1e9 + (to->tv_nsec - from->tv_nsec);
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 2000000;
    if (calls <= 0) {
        fprintf(stderr, "usage: getppid_loop [CALLS > 0]\n");
        return 2;
    }
    printf("ready %d\n", getpid());
    fflush(stdout);
    char line[16];
    if (read(0, line, sizeof line) <= 0)
        return 1;

    struct timespec start, end, cpu_start, cpu_end;
    volatile pid_t sink = 0; /* keeps the calls' results used */
    clock_gettime(CLOCK_MONOTONIC, &start);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start);
    for (long i = 0; i < calls; i++)
        sink = getppid();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_end);
    clock_gettime(CLOCK_MONOTONIC, &end);
    (void)sink;

    printf("ns_per_call %.1f %.1f\n", elapsed_ns(&start, &end) / calls,
           elapsed_ns(&cpu_start, &cpu_end) / calls);
    return 0;
}
