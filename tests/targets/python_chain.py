"""A known call chain that blocks: outer_handler -> middle_layer -> leaf_block
-> time.sleep(0.15), three times. Prints "ready PID", waits for a line on
stdin (the tracer attaches), runs, and exits. Works on CPython 3.8+."""

import os
import sys
import time


def leaf_block():
    time.sleep(0.15)  # the blocking call


def middle_layer():
    leaf_block()


def outer_handler():
    middle_layer()


print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
for _ in range(3):
    outer_handler()
