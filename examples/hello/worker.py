"""A worker that polls the web service every two seconds."""
import os
import time
import urllib.request

url = os.environ["WEB_URL"]
print(f"worker: polling {url}")
while True:
    with urllib.request.urlopen(url) as response:
        body = response.read()
    print(f"worker: web answered {response.status} with {len(body)} bytes")
    time.sleep(2)
