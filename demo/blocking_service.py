"""A small asyncio service with planted event-loop blockers: the tracer's demo
and the target of its integration tests.

A request handler does ordinary awaits, then one of four things that block the
event loop (the mistakes tracer exists to find):
  fetch_profile   time.sleep(0.25) inside a coroutine
  query_upstream  a blocking socket recv from a slow upstream (300 ms)
  render_report   200 ms of pure-Python CPU work
  convert_image   subprocess.run(["sleep", "0.2"])
between normal `await asyncio.sleep()` work.

Usage: blocking_service.py [--rounds N] [--wait] [--warm] [--uvloop]
  --rounds N  run each blocker N times, idle 2 s (`await asyncio.sleep(2)`,
              which is not a stall), then exit; default: run until killed
  --wait      after printing "ready PID", wait for a line on stdin before
              starting (lets a tracer attach first)
  --warm      resolve the upstream's address once before "ready": the first
              getaddrinfo imports the idna codec, CPU work (and page faults)
              that would otherwise run inside the first planted recv stall
  --uvloop    run on uvloop instead of asyncio's default selector loop
It prints "upstream PORT" (the slow upstream's port), then "ready PID".
"""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

UPSTREAM_DELAY = 0.3


def slow_upstream(server):
    """A thread serving the 'upstream': answers each request after 300 ms."""
    while True:
        conn, _ = server.accept()
        with conn:
            if conn.recv(64):
                time.sleep(UPSTREAM_DELAY)
                conn.sendall(b"profile-data")


def fetch_profile():
    time.sleep(0.25)  # blocks the loop: should be `await asyncio.sleep`


def query_upstream(port):
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET")
        return conn.recv(64)  # blocks the loop for the upstream's 300 ms


def render_report():
    deadline = time.perf_counter() + 0.2
    total = 0
    while time.perf_counter() < deadline:  # 200 ms on CPU
        total += sum(i * i for i in range(200))
    return total


def convert_image():
    subprocess.run(["sleep", "0.2"], check=True)  # waits for a child


async def handle(kind, upstream_port):
    await asyncio.sleep(0.01)  # ordinary async work
    if kind == "sleep":
        fetch_profile()
    elif kind == "upstream":
        query_upstream(upstream_port)
    elif kind == "cpu":
        render_report()
    elif kind == "subprocess":
        convert_image()
    await asyncio.sleep(0.01)


async def serve(rounds, upstream_port):
    round_number = 0
    while rounds is None or round_number < rounds:
        for kind in ("sleep", "upstream", "cpu", "subprocess"):
            # Each request runs in a task of its own, named after it.
            name = f"{kind}-request-{round_number}"
            await asyncio.create_task(handle(kind, upstream_port), name=name)
            await asyncio.sleep(0.3)  # the loop idles between requests
        round_number += 1
    await asyncio.sleep(2)  # a long idle wait: not a stall


def main():
    rounds = None
    if "--rounds" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=slow_upstream, args=(server,), daemon=True).start()
    port = server.getsockname()[1]
    print(f"upstream {port}", flush=True)
    if "--warm" in sys.argv:
        socket.getaddrinfo("127.0.0.1", port)
    print(f"ready {os.getpid()}", flush=True)
    if "--wait" in sys.argv:
        sys.stdin.readline()
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()
    asyncio.run(serve(rounds, port))


if __name__ == "__main__":
    main()
