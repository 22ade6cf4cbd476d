"""The asyncio-service benchmark's target (cargo xtask bench): aiohttp hello
world on 127.0.0.1, on a free port.

Prints "ready PID PORT" once it accepts connections. Exits when its stdin closes,
so a benchmark that dies cannot leave it running."""

import asyncio
import os
import socket
import sys
import threading

from aiohttp import web


async def hello(_request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


def exit_on_stdin_eof() -> None:
    sys.stdin.read()
    os._exit(0)


async def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    # No access log: a hello world that logs every request measures logging.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"ready {os.getpid()} {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    asyncio.run(main())
