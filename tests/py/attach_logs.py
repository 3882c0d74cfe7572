"""docker-py's attach(stream=False, logs=True) right after wait, again and again: every
time it must return the container's output (issue 15, item 7).
Usage: python3 attach_logs.py tcp://host:port [tries]"""
import sys

import docker

client = docker.DockerClient(base_url=sys.argv[1], version="auto", timeout=60)
tries = int(sys.argv[2]) if len(sys.argv) > 2 else 30
lost = []
for i in range(tries):
    c = client.containers.create("busybox:latest", ["echo", f"hello {i}"])
    try:
        c.start()
        c.wait()
        out = c.attach(stream=False, logs=True)
        if out != f"hello {i}\n".encode():
            lost.append((i, out))
    finally:
        c.remove(force=True)
if lost:
    print(f"{len(lost)} of {tries} attaches lost output: {lost[:5]}")
    sys.exit(1)
print(f"attach ok {tries}")
