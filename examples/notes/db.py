"""A tiny key-value database over HTTP: GET /health, GET /keys,
GET/PUT/DELETE /notes/KEY. Data is kept in data/notes.json."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "notes.json")


def load():
    try:
        with open(DATA) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(notes):
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    tmp = DATA + ".tmp"
    with open(tmp, "w") as f:
        json.dump(notes, f, indent=1, sort_keys=True)
    os.replace(tmp, DATA)


NOTES = load()


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self):
        prefix = "/notes/"
        return self.path[len(prefix):] if self.path.startswith(prefix) else None

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b"ok\n")
        if self.path == "/keys":
            return self.reply(200, ("\n".join(sorted(NOTES)) + "\n").encode())
        key = self.key()
        if key in NOTES:
            return self.reply(200, NOTES[key].encode())
        self.reply(404, b"no such note\n")

    def do_PUT(self):
        key = self.key()
        if not key:
            return self.reply(400, b"PUT /notes/KEY\n")
        length = int(self.headers.get("Content-Length", 0))
        NOTES[key] = self.rfile.read(length).decode()
        save(NOTES)
        self.reply(204)

    def do_DELETE(self):
        key = self.key()
        if NOTES.pop(key, None) is None:
            return self.reply(404, b"no such note\n")
        save(NOTES)
        self.reply(204)

    def log_message(self, format, *args):
        print("db:", format % args)


port = int(os.environ["PORT"])
print(f"db: listening on 127.0.0.1:{port} with {len(NOTES)} notes")
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
