/* Spends its CPU in the kernel: reads 1 MiB at a time from /dev/zero (the
 * kernel clears the buffer) in read_zeros, for RUN_SECONDS. Prints "ready
 * PID", waits for a line on stdin, runs and exits. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RUN_SECONDS 2.0
#define CHUNK (1 << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void read_zeros(int fd, char *buffer) {
    if (read(fd, buffer, CHUNK) != CHUNK)
        exit(1);
}

int main(void) {
    char line[16];
    char *buffer = malloc(CHUNK);
    int fd = open("/dev/zero", O_RDONLY);
    if (!buffer || fd < 0)
        return 1;
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    double end = now() + RUN_SECONDS;
    while (now() < end)
        read_zeros(fd, buffer);
    return 0;
}
