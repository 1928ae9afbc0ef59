"""HTTP/1.1 by hand over a socket, for bodies no client library would send (200 MB, lying lengths).

``send_body`` writes the request head, then the body piece by piece, checking before each
piece whether the node has answered already; it stops sending as soon as it has. So a test
can tell a refusal *before* the body (no byte of it sent) from one after reading it.
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

PIECE = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    head: str
    body: bytes
    sent: int  # body bytes written before the answer came


def send_body(
    url: str,
    method: str,
    path: str,
    total: int,
    *,
    chunked: bool = False,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Answer:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sent = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = b"0" * PIECE
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0.05 if sent else 2.0)
                if readable:
                    break
                n = min(PIECE, total - sent)
                data = piece[:n]
                sock.sendall(f"{n:x}\r\n".encode() + data + b"\r\n" if chunked else data)
                sent += n
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = _read_answer(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return Answer(status, head.decode("latin-1"), body, sent)


def _read_answer(sock: socket.socket) -> bytes:
    raw = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            raw += data
            head, sep, body = raw.partition(b"\r\n\r\n")
            if sep:
                length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
    except (ConnectionResetError, TimeoutError):
        pass
    return raw
