"""Servers on 127.0.0.1 that tests start: a tiny SMTP server (EHLO, optional AUTH PLAIN, MAIL,
RCPT, DATA, QUIT; no STARTTLS) and an HTTP server that records POSTs and answers a set status."""

from __future__ import annotations

import base64
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Mailbox:
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str | None = None  # when set, AUTH PLAIN is offered and checked


class _SMTPHandler(socketserver.StreamRequestHandler):
    server: _SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        box = self.server.mailbox
        self.reply("220 localhost test SMTP")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-localhost" + ("\r\n250-AUTH PLAIN" if box.password else ""))
                self.reply("250 8BITMIME")
            elif verb == "AUTH":
                _, user, pw = base64.b64decode(line.split()[2]).decode().split("\0")
                box.logins.append((user, pw))
                self.reply("235 ok" if pw == box.password else "535 bad credentials")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data: list[str] = []
                while (part := self.rfile.readline().decode()) not in (".\r\n", ""):
                    data.append(part[1:] if part.startswith("..") else part)
                box.messages.append({"from": sender, "to": rcpts, "data": "".join(data)})
                sender, rcpts = "", []
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.mailbox = mailbox


@contextmanager
def smtp_server(password: str | None = None) -> Iterator[tuple[int, Mailbox]]:
    box = Mailbox(password=password)
    server = _SMTPServer(box)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Inbox:
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@contextmanager
def http_server() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            inbox.posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(inbox.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
