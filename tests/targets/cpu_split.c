/* Spends about 75 % of its CPU in heavy_path and 25 % in light_path, both
 * through shared_helper, for RUN_SECONDS. Built -O2 -fomit-frame-pointer.
 * Prints "ready PID", waits for a line on stdin, runs, prints "cpu_ns N"
 * (its own CPU time, from the kernel) and exits. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define RUN_SECONDS 2.0

static volatile double sink;

__attribute__((noinline)) double shared_helper(int n) {
    double x = 0;
    for (int i = 0; i < n; i++)
        x += sqrt((double)i + sink);
    return x;
}

__attribute__((noinline)) void heavy_path(void) {
    sink = shared_helper(30000);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void light_path(void) {
    sink = shared_helper(10000);
    __asm__ volatile("" ::: "memory");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    double end = now() + RUN_SECONDS;
    while (now() < end) {
        heavy_path();
        light_path();
    }
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    printf("cpu_ns %lld\n", (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
    return 0;
}
