"""Real receivers of alerts on 127.0.0.1 for the tests: a webhook (an HTTP server answering a chosen status) and an
SMTP server (a small socket server speaking the part of SMTP that Django's mail client uses)."""

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _HookServer(ThreadingHTTPServer):
    received: list[dict[str, Any]]
    status: int


class _Hook(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Webhook:
    """A webhook receiver: ``url``, the posts it ``received`` (their JSON), and the ``status`` it answers."""

    def __init__(self, status=200):
        self.server = _HookServer(("127.0.0.1", 0), _Hook)
        self.server.received = []
        self.server.status = status
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/gymnos"

    @property
    def received(self):
        return self.server.received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Session(socketserver.StreamRequestHandler):
    server: "_ThreadingTCPServer"

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 127.0.0.1 test SMTP")
        message: dict[str, Any] = {"from": "", "to": [], "data": ""}
        while True:
            line = self.rfile.readline(4096).decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 127.0.0.1")
            elif verb == "MAIL":
                message["from"] = line.split(":", 1)[1].strip()
                self.reply("250 OK")
            elif verb == "RCPT":
                message["to"].append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while (data := self.rfile.readline(65536)) not in (b".\r\n", b""):
                    lines.append(data.decode(errors="replace"))
                message["data"] = "".join(lines)
                self.server.messages.append(dict(message))
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


class _ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    messages: list[dict[str, Any]]


class SMTPServer:
    """A real SMTP server on 127.0.0.1 keeping each message it is given (``messages``: from, to, data)."""

    def __init__(self):
        self.server = _ThreadingTCPServer(("127.0.0.1", 0), _Session)
        self.server.messages = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    @property
    def messages(self):
        return self.server.messages

    def close(self):
        self.server.shutdown()
        self.server.server_close()
