"""A bearer-token check in front of the local Model Registry server, as Istio or an auth proxy is on a cluster.

    python setup/token_proxy.py --port P --upstream U --token-file FILE   (logs to stderr)

Listens on 127.0.0.1:P only and forwards to 127.0.0.1:U. A request whose ``Authorization`` header is not
exactly ``Bearer <the token in FILE>`` gets HTTP 401; a body over 32 MiB gets 413. The token is read again
whenever FILE changes (inode, size or mtime), so a rotated token is taken by the next request and the old one
refused, with no signal. One process, one thread per client connection, each with its own keep-alive
connection to the server; bodies are streamed. The log names method, path and status, never a header.
"""

from __future__ import annotations

import argparse
import hmac
import http.client
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 32 * 1024 * 1024
CHUNK = 64 * 1024
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}
HOP |= {"expect"}  # the handler has answered 100 Continue itself
REFUSED = b'{"code":"Unauthorized","message":"missing or wrong bearer token"}'


class Token:
    """The accepted header value, re-read when the token file changes."""

    def __init__(self, path: str) -> None:
        self.path, self._seen, self._value, self._lock = path, None, None, threading.Lock()

    def expected(self) -> bytes | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # no token: every request is refused
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if seen != self._seen:
                with open(self.path, "rb") as fh:
                    self._value, self._seen = b"Bearer " + fh.read(), seen
            return self._value


class Upstream(http.client.HTTPConnection):
    """A connection to the server that sends small writes at once (no Nagle: 40 ms per request otherwise)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # likewise towards the client
    token: Token
    upstream: int

    def _refuse(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        expected = self.token.expected()
        given = (self.headers.get("Authorization") or "").encode("latin-1", "replace")
        if expected is None or not hmac.compare_digest(given, expected):
            self._refuse(401, REFUSED, {"WWW-Authenticate": 'Bearer realm="model-registry"'})
            return
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._drain_chunked()
            self._refuse(411, b'{"code":"LengthRequired","message":"send a Content-Length"}')
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:  # not a number, or negative: nothing safe to forward
            self.close_connection = True
            self._refuse(400, b'{"code":"BadRequest","message":"Content-Length is not a byte count"}')
            return
        if length > MAX_BODY:
            self.close_connection = True
            while length > 0 and (piece := self.rfile.read(min(CHUNK, length))):  # drained, so the client reads 413
                length -= len(piece)
            self._refuse(413, b'{"code":"RequestEntityTooLarge","message":"body over 32 MiB"}')
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        try:
            resp = self._send(headers, length)
        except (ConnectionRefusedError, TimeoutError, http.client.HTTPException) as exc:
            self.close_connection = True
            self._refuse(502, b'{"code":"BadGateway","message":"the Model Registry server does not answer"}')
            self.log_message("upstream 127.0.0.1:%s: %s", self.upstream, type(exc).__name__)
            return
        self.send_response(resp.status, resp.reason)
        body = self.command != "HEAD" and resp.status not in (204, 304) and resp.status >= 200
        chunked = body and resp.getheader("Content-Length") is None
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while body and (piece := resp.read1(CHUNK)):
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        resp.read()  # drain (HEAD, 204), so the upstream connection can be reused
        if resp.will_close:
            self._upstream(fresh=True, connect=False)

    def _drain_chunked(self) -> None:
        """Read a chunked body (at most 32 MiB) and drop it, so the client reads the answer, not a reset."""
        left = MAX_BODY
        while left > 0 and (size := int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)):
            left -= len(self.rfile.read(min(size, left) + 2))
        while left > 0 and self.rfile.readline(100).strip():  # trailers
            pass

    def _send(self, headers: dict[str, str], length: int) -> http.client.HTTPResponse:
        """Send the request upstream, streaming its body; retry once on a kept-alive connection the server closed."""
        for attempt in (1, 2):
            conn = self._upstream(fresh=attempt == 2)
            try:
                conn.putrequest(self.command, self.path, skip_host=False, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.endheaders()
                sent = 0
                while sent < length:
                    piece = self.rfile.read(min(CHUNK, length - sent))
                    if not piece:
                        raise ConnectionAbortedError("the client closed the connection mid-body")
                    conn.send(piece)
                    sent += len(piece)
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt == 2 or length:
                    raise
        raise AssertionError("unreachable")

    def _upstream(self, fresh: bool = False, connect: bool = True) -> http.client.HTTPConnection:
        conn = getattr(self, "_conn", None)
        if fresh and conn is not None:
            conn.close()
            conn = None
        if conn is None and connect:
            conn = Upstream("127.0.0.1", self.upstream, timeout=600)
        self._conn = conn
        return conn  # type: ignore[return-value]

    def finish(self) -> None:
        super().finish()
        if getattr(self, "_conn", None) is not None:
            self._conn.close()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    args = parser.parse_args(argv)
    Handler.token, Handler.upstream = Token(args.token_file), args.upstream
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"token proxy on 127.0.0.1:{args.port} -> 127.0.0.1:{args.upstream}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
