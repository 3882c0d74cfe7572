"""docker-py (the PyPI `docker` package) through Shoal: run, logs, exec, events.

Usage: python3 docker_py_smoke.py tcp://127.0.0.1:PORT
Exits non-zero with a message on the first thing that is not as a Docker engine answers.
"""
import sys
import threading
import time

import docker


def check(cond, what):
    if not cond:
        raise SystemExit("docker-py through shoal: " + what)


def main(url):
    client = docker.DockerClient(base_url=url, version="auto", timeout=60)
    check(client.ping(), "ping")
    info = client.info()
    check(any(pair[0] == "Nodes" for pair in info["SystemStatus"]), "info has Nodes")

    # Events in the background, from now on.
    since = int(time.time()) - 1
    seen = []

    def follow():
        for ev in client.events(since=since, decode=True, filters={"type": "container"}):
            seen.append(ev)
            if ev.get("Action") == "destroy":
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()

    # run and wait (attached run: create, start, wait, logs).
    out = client.containers.run("busybox", ["echo", "hello from docker-py"], remove=True)
    check(out == b"hello from docker-py\n", "run output %r" % out)

    # detached run, logs, exec.
    c = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 1000"], detach=True, name="pyweb")
    deadline = time.time() + 10
    while b"started" not in c.logs() and time.time() < deadline:
        time.sleep(0.1)
    check(c.logs() == b"started\n", "logs %r" % c.logs())
    c.reload()
    check(c.status == "running", "status %s" % c.status)
    check(c.attrs["Node"]["Name"].startswith("node-"), "inspect carries the node")
    code, output = c.exec_run(["echo", "in exec"])
    check(code == 0 and output == b"in exec\n", "exec_run %r %r" % (code, output))
    code, output = c.exec_run(["sh", "-c", "exit 4"])
    check(code == 4, "exec exit code %r" % code)
    names = [x.name for x in client.containers.list()]
    check(any(n.endswith("pyweb") for n in names), "list %r" % names)
    c.remove(force=True)

    t.join(timeout=15)
    actions = [e.get("Action") for e in seen]
    for want in ("create", "start", "die", "destroy"):
        check(want in actions, "event %s in %r" % (want, actions))
    check(all("node" in e for e in seen), "events carry the node")
    print("docker-py ok:", len(seen), "events")


if __name__ == "__main__":
    main(sys.argv[1])
