#!/usr/bin/env python3
"""A hostile OCI registry for locald's tests: serves the files of ROOT and
misbehaves where ROOT says so. Started by `locald_image::testing::HostileRegistry`.

Usage: hostile_registry.py ROOT

Layout of ROOT (written by the test):
  manifests/REF            body of GET /v2/NAME/manifests/REF (REF a tag or digest,
                           `:` written as `_`); its media type is its `mediaType`
  manifests/REF.endless    instead: a chunked JSON body that never ends
  manifests/REF.huge       instead: a Content-Length far above any limit, then an
                           endless body
  blobs/HEX                body of GET /v2/NAME/blobs/sha256:HEX
  blobs/HEX.overflow       then, after the real bytes: garbage, chunked, no end
  blobs/HEX.overflow-cl    same with a Content-Length counting the garbage
  blobs/HEX.trickle        sent 1 byte every 50 ms (a slow registry)
  blobs/HEX.error-endless  instead: HTTP 500 with an endless chunked body
  blobs/HEX.error-body     instead: HTTP 500 whose body is this file's content
  blobs/HEX.stall          the headers and half the bytes, then silence (until
                           the client hangs up or the server's lifetime ends)
  auth                     when present, every /v2/ request needs a bearer token
                           from /token (the Docker token protocol), and a token
                           expires after TOKEN_USES requests
  token-endless            the token endpoint answers with an endless body

Prints `PORT <n>` once listening on 127.0.0.1, then `SENT <path> <bytes>` after
each response (complete or cut by the client). "Endless" bodies stop after
MAX_ENDLESS bytes and the whole server exits after LIFETIME seconds, so the
server stops by itself even when its test dies.
"""

import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time

MAX_ENDLESS = 256 << 20
TOKEN_USES = 2
LIFETIME = 120
CHUNK = 64 << 10
REPORT_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def report(self, sent):
        # One write of the whole line under a lock: `print` writes the text
        # and the newline apart, so two handler threads reporting at once
        # could interleave into one line the test cannot read, and a record
        # would be lost.
        line = f"SENT {self.path} {sent}\n"
        with REPORT_LOCK:
            sys.stdout.write(line)
            sys.stdout.flush()

    def do_GET(self):
        root = self.server.root
        parts = self.path.split("?")[0].split("/")
        if parts[1] == "token":
            return self.issue_token()
        if os.path.exists(os.path.join(root, "auth")) and not self.authorized():
            return self.unauthorized()
        if self.path.rstrip("/") == "/v2":
            return self.send_body(b"{}", "application/json")
        if len(parts) >= 5 and parts[1] == "v2" and parts[-2] == "manifests":
            name = parts[-1].replace(":", "_")
            path = os.path.join(root, "manifests", name)
            if os.path.exists(path + ".endless"):
                return self.endless(None)
            if os.path.exists(path + ".huge"):
                return self.endless(1 << 40)
            if not os.path.exists(path):
                return self.not_found()
            with open(path, "rb") as f:
                body = f.read()
            media_type = json.loads(body).get("mediaType", "application/json")
            return self.send_body(body, media_type)
        if len(parts) >= 5 and parts[1] == "v2" and parts[-2] == "blobs":
            hexdigest = parts[-1].split(":")[-1]
            path = os.path.join(root, "blobs", hexdigest)
            if not os.path.exists(path):
                return self.not_found()
            with open(path, "rb") as f:
                body = f.read()
            if os.path.exists(path + ".overflow"):
                return self.endless(None, prefix=body)
            if os.path.exists(path + ".overflow-cl"):
                return self.endless(len(body) + MAX_ENDLESS, prefix=body)
            if os.path.exists(path + ".trickle"):
                return self.trickle(body)
            if os.path.exists(path + ".error-endless"):
                return self.endless(None, status=500)
            if os.path.exists(path + ".error-body"):
                with open(path + ".error-body", "rb") as f:
                    error = f.read()
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return self.report(len(error))
            if os.path.exists(path + ".stall"):
                return self.stall(body)
            return self.send_body(body, "application/octet-stream")
        return self.not_found()

    def not_found(self):
        body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.report(len(body))

    def send_body(self, body, media_type):
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.report(len(body))

    def issue_token(self):
        if os.path.exists(os.path.join(self.server.root, "token-endless")):
            return self.endless(None)
        with self.server.lock:
            self.server.token_serial += 1
            token = f"tok-{self.server.token_serial}"
            self.server.tokens[token] = TOKEN_USES
        self.send_body(json.dumps({"token": token}).encode(), "application/json")

    def authorized(self):
        header = self.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        with self.server.lock:
            uses = self.server.tokens.get(token, 0)
            if uses <= 0:
                return False
            self.server.tokens[token] = uses - 1
            return True

    def unauthorized(self):
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}'
        port = self.server.server_address[1]
        self.send_response(401)
        self.send_header(
            "WWW-Authenticate",
            f'Bearer realm="http://127.0.0.1:{port}/token",service="hostile"',
        )
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.report(len(body))

    def endless(self, content_length, prefix=b"", status=200):
        """`prefix`, then garbage until MAX_ENDLESS or the client hangs up."""
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if content_length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()
        chunked = content_length is None
        sent = 0
        filler = b'{"schemaVersion":2,"padding":"' + b"x" * CHUNK
        try:
            data = prefix or filler
            while sent < MAX_ENDLESS:
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
                else:
                    self.wfile.write(data)
                sent += len(data)
                data = b"x" * CHUNK
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
        self.report(sent)

    def stall(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = body[: len(body) // 2]
        try:
            self.wfile.write(half)
            self.wfile.flush()
            # Silence; a read of the closed connection ends it when the
            # client gives up.
            self.connection.settimeout(LIFETIME)
            self.connection.recv(1)
        except OSError:
            pass
        self.close_connection = True
        self.report(len(half))

    def trickle(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                sent += 1
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
        self.report(sent)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client hanging up mid-response is what these tests provoke.
        pass


def main():
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(LIFETIME)
    server = Server(("127.0.0.1", 0), Handler)
    server.root = sys.argv[1]
    server.lock = threading.Lock()
    server.tokens = {}
    server.token_serial = 0
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
