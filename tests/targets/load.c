/* Sustained load. Usage: load SECONDS FAST_THREADS SLOW_THREADS
 * FAST_THREADS call getppid() in a tight loop; SLOW_THREADS sleep 1 ms in
 * a loop (each sleep a slow call under --threshold 1ms: about 1,000 a
 * second per thread). Prints "ready PID", waits for a line on stdin, runs
 * for SECONDS, then prints "getppid N" and "sleeps N" (how many it made)
 * and exits. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static atomic_long fast_calls, slow_calls;

static void *fast(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        getppid();
        n++;
    }
    atomic_fetch_add(&fast_calls, n);
    return NULL;
}

static void *slow(void *arg) {
    (void)arg;
    long n = 0;
    struct timespec ts = {0, 1000 * 1000};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        nanosleep(&ts, NULL);
        n++;
    }
    atomic_fetch_add(&slow_calls, n);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    int seconds = atoi(argv[1]), nfast = atoi(argv[2]), nslow = atoi(argv[3]);
    char line[16];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (read(0, line, sizeof line) <= 0)
        return 1;
    pthread_t threads[256];
    int n = 0;
    for (int i = 0; i < nfast && n < 256; i++)
        pthread_create(&threads[n++], NULL, fast, NULL);
    for (int i = 0; i < nslow && n < 256; i++)
        pthread_create(&threads[n++], NULL, slow, NULL);
    sleep(seconds);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    printf("getppid %ld\nsleeps %ld\n", atomic_load(&fast_calls), atomic_load(&slow_calls));
    fflush(stdout);
    return 0;
}
