"""The database's client: python3 client.py keys | get KEY | put KEY TEXT |
delete KEY. It finds the database at 127.0.0.1:$PORT (run it in db's world:
`locald run db -- python3 client.py keys`, or from a task)."""

import os
import sys
import urllib.error
import urllib.request

BASE = f"http://127.0.0.1:{os.environ['PORT']}"


def call(method, path, body=None):
    request = urllib.request.Request(BASE + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path}: {error.code} {error.read().decode().strip()}")
    except urllib.error.URLError as error:
        sys.exit(f"the database does not answer at {BASE} ({error.reason}): is it up?")


def main(words):
    match words:
        case ["keys"]:
            print(call("GET", "/keys"), end="")
        case ["get", key]:
            print(call("GET", f"/notes/{key}"))
        case ["put", key, text]:
            call("PUT", f"/notes/{key}", text.encode())
        case ["delete", key]:
            call("DELETE", f"/notes/{key}")
        case _:
            sys.exit(__doc__)


main(sys.argv[1:])
