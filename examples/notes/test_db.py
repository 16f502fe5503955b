"""The database's tests: they talk to the running db at 127.0.0.1:$PORT."""

import os
import unittest
import urllib.request

BASE = f"http://127.0.0.1:{os.environ['PORT']}"


def request(method, path, body=None):
    req = urllib.request.Request(BASE + path, data=body, method=method)
    with urllib.request.urlopen(req, timeout=5) as response:
        return response.status, response.read().decode()


class DatabaseTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(request("GET", "/health"), (200, "ok\n"))

    def test_a_note_round_trips(self):
        self.assertEqual(request("PUT", "/notes/test-note", "héllo".encode())[0], 204)
        self.assertEqual(request("GET", "/notes/test-note"), (200, "héllo"))
        self.assertEqual(request("DELETE", "/notes/test-note")[0], 204)

    def test_the_seeded_notes_are_there(self):
        _, keys = request("GET", "/keys")
        self.assertIn("welcome", keys.split())


if __name__ == "__main__":
    unittest.main()
