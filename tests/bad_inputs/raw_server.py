"""A loopback TCP server that is not a proper HTTP server: it answers garbage, or never answers."""

from __future__ import annotations

import contextlib
import socket
import threading


class RawServer:
    """``mode`` "garbage": read the request, answer bytes that are not HTTP, close.
    ``mode`` "hang": accept and read, then never answer (until the server stops)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.settimeout(1.0)
            with contextlib.suppress(OSError):
                connection.recv(65536)
            if self.mode == "garbage":
                connection.sendall(b"\x00\xffSSH-2.0-not-http\r\n\x00\x01\x02\r\n\r\n")
                connection.close()
            else:
                self._held.append(connection)
