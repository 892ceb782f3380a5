"""Running the app under uvicorn on a socket bound beforehand, so that a port in use is a
clean start-up error rather than a log line from inside the server."""

from __future__ import annotations

import ipaddress
import socket
from importlib.util import find_spec

import uvicorn
from fastapi import FastAPI

from policyengine.server.jsonlog import log_config

__all__ = ["bind_socket", "is_loopback", "run"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv4 or IPv6); raises `OSError` on failure."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def run(app: FastAPI, sock: socket.socket, *, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, queued decisions are logged."""
    config = uvicorn.Config(
        app,
        log_config=log_config(log_level),
        log_level=log_level,
        access_log=False,  # one structured line per request comes from the app itself
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        http="httptools" if find_spec("httptools") else "h11",
        loop="uvloop" if find_spec("uvloop") else "asyncio",
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run(sockets=[sock])
