"""A pre-fork server, as gunicorn or uvicorn -w N lay it out: a master that
forks asyncio workers and then only waits for them.

The master forks WORKERS workers, each of which starts its event loop and
waits in it (idle in epoll_wait, as a worker between requests) for a byte on
its pipe. Once every worker's loop runs, the master prints one
"worker PID" line per worker, then "ready PID", and reads stdin:
  the first line: it forks one more worker and prints its "worker PID";
  the second line: every worker plants STALLS stalls (time.sleep(BLOCK) in a
  callback, one every GAP seconds), prints "done PID" and exits; the master
  reaps them all and exits.
Usage: prefork_master.py [WORKERS] [STALLS]"""

import asyncio
import os
import sys
import time

BLOCK = 0.15
GAP = 0.3


def blocking_callback():
    time.sleep(BLOCK)


async def serve(go_fd, stalls):
    loop = asyncio.get_running_loop()
    go = loop.create_future()
    loop.add_reader(go_fd, lambda: go.done() or go.set_result(os.read(go_fd, 1)))
    await go
    loop.remove_reader(go_fd)
    for _ in range(stalls):
        await asyncio.sleep(GAP)
        loop.call_soon(blocking_callback)
    await asyncio.sleep(GAP)


def worker(go_fd, up_fd, stalls):
    """Runs in the forked child: never returns."""
    try:

        async def main():
            # The loop runs: tell the master, then wait in it.
            os.write(up_fd, b"u")
            await serve(go_fd, stalls)

        asyncio.run(main())
        print(f"done {os.getpid()}", flush=True)
    finally:
        os._exit(0)


def fork_worker(stalls):
    """Forks a worker whose loop runs once this returns: (pid, go pipe)."""
    go_read, go_write = os.pipe()
    up_read, up_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_write)
        os.close(up_read)
        worker(go_read, up_write, stalls)
    os.close(go_read)
    os.close(up_write)
    if os.read(up_read, 1) != b"u":
        sys.exit(f"worker {pid} did not start")
    os.close(up_read)
    return pid, go_write


def warm_up():
    """Pages in the asyncio code once, in the master, so that no worker's
    traced loop waits for a cold disk."""

    async def once():
        await asyncio.sleep(0.01)
        time.sleep(0.001)

    asyncio.run(once())


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    stalls = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    warm_up()
    started = [fork_worker(stalls) for _ in range(workers)]
    for pid, _ in started:
        print(f"worker {pid}", flush=True)
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.readline()
    started.append(fork_worker(stalls))
    print(f"worker {started[-1][0]}", flush=True)
    sys.stdin.readline()
    for _, go in started:
        os.write(go, b"g")
    failed = 0
    for pid, _ in started:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    sys.exit(failed)


main()
