"""Serve an ASGI app over real HTTP on a loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import uvicorn


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the test process keeps its own signal handling
        yield


@contextlib.contextmanager
def live_server(app, host: str = "127.0.0.1", *, as_served: bool = False):
    """Yields the base URL, e.g. http://127.0.0.1:54321. `as_served`: with the configuration
    `causeline serve` gives uvicorn (server/serve.py), timeouts and limits included."""
    sockets = None
    if as_served:
        from server.serve import uvicorn_config

        sockets = [socket.create_server((host, 0))]
        config = uvicorn_config(app, host, sockets[0])
    else:
        config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off")
    server = _QuietServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=sockets)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        for sock in sockets or ():
            sock.close()


@contextlib.contextmanager
def live_grpc(service, host: str = "127.0.0.1"):
    """Serve OTLP/gRPC for `service` on a loopback port, on its own event loop in a background
    thread. Yields the target, e.g. 127.0.0.1:54321."""
    from collector.grpc_server import GrpcReceiver

    receiver = GrpcReceiver(service, host, 0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(receiver.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not receiver.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test gRPC server did not start")
        time.sleep(0.01)
    try:
        yield f"{host}:{receiver.port}"
    finally:
        loop.call_soon_threadsafe(setattr, receiver, "should_exit", True)
        thread.join(40)
        loop.close()
