"""The streamed-event benchmark's target (cargo xtask bench): N reads of 64 KiB
from /dev/zero (argv[1]), three Python functions deep, like a handler's
blocking call. Each takes a few microseconds on the CPU without sleeping (a
sleep would measure the CPU's idle states instead), so under
`tracer --threshold 1us` every one of them is a slow call that the kernel
streams with its native stack copy and Python frames: the time added per call
is the cost of one streamed event.

Prints "ready PID", waits for a line on stdin (the tracer attaches), then
prints "ns_per_call WALL CPU" as bench/getppid_loop.c does."""

import os
import sys
import time


def leaf(zero):
    os.read(zero, 1 << 16)


def middle(zero, calls):
    for _ in range(calls):
        leaf(zero)


def handler(calls):
    zero = os.open("/dev/zero", os.O_RDONLY)
    middle(zero, calls)


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    print(f"ready {os.getpid()}", flush=True)
    if not sys.stdin.readline():
        return 1
    wall, cpu = time.monotonic_ns(), time.thread_time_ns()
    handler(calls)
    wall, cpu = time.monotonic_ns() - wall, time.thread_time_ns() - cpu
    print(f"ns_per_call {wall / calls:.1f} {cpu / calls:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
