"""A CPU-bound Python function: crunch() runs for 1.5 s. Prints "ready PID",
waits for a line on stdin (the tracer attaches), runs, and exits."""

import os
import sys
import time


def crunch():
    deadline = time.perf_counter() + 1.5
    total = 0
    while time.perf_counter() < deadline:
        total += sum(i * i for i in range(100))
    return total


print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
crunch()
