/* Thread churn. Usage: many_threads SLEEPERS SHORT_LIVED
 * Starts SLEEPERS threads at once, each blocking in nanosleep(50 ms), and
 * joins them; then SHORT_LIVED threads one after another, each calling
 * getppid() once. Prints "ready PID", waits for a line on stdin, runs,
 * exits. Short-lived threads outnumber the tracer's thread table, so their
 * state must be reclaimed as they exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

static void *short_lived(void *arg) {
    (void)arg;
    getppid();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int sleepers = atoi(argv[1]), short_lived_count = atoi(argv[2]);
    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    pthread_t *threads = calloc(sleepers, sizeof *threads);
    for (int i = 0; i < sleepers; i++)
        pthread_create(&threads[i], NULL, sleeper, NULL);
    for (int i = 0; i < sleepers; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < short_lived_count; i++) {
        pthread_t t;
        pthread_create(&t, NULL, short_lived, NULL);
        pthread_join(t, NULL);
    }
    return 0;
}
