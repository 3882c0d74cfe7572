"""docker-py (Debian's python3-docker) through Shoal where it parses Shoal's answers:
swarm routes, image load and import, inspect of a name no node has, a volume's create
answer, /info's image count, and a build with cache_from whose image runs right after.

Usage: python3 compat_sdk.py tcp://SHOAL ENGINE_URL... (the engines behind Shoal)
Exits non-zero with a message on the first thing that is not as a Docker engine answers.
"""
import io
import re
import sys

import docker

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)

DOCKERFILE = b"""FROM busybox AS build
RUN echo built > /out
FROM busybox
COPY --from=build /out /out
CMD ["cat", "/out"]
"""


def check(cond, what):
    if not cond:
        raise SystemExit("docker-py through shoal: " + what)


def api_error(call):
    try:
        call()
    except docker.errors.APIError as e:
        return e
    raise SystemExit("docker-py through shoal: no error from " + repr(call))


def swarm(client):
    # A tidy-up's leave: 503 means "nothing to leave".
    check(client.api.leave_swarm(force=True) is True, "leave_swarm(force=True)")
    for call in (
        client.api.inspect_swarm,
        client.nodes.list,
        client.services.list,
        client.secrets.list,
        client.configs.list,
        client.api.tasks,
    ):
        e = api_error(call)
        check(e.status_code == 503, "%r: %s" % (call, e))
        check(e.explanation == NOT_A_MANAGER, "%r: %s" % (call, e.explanation))
    e = api_error(lambda: client.swarm.init(advertise_addr="127.0.0.1"))
    check(e.status_code == 503, "swarm init: %s" % e)
    check("standalone cluster manager" in e.explanation, "swarm init: %s" % e.explanation)


def load_and_import(client, engines):
    client.images.get("busybox").tag("pyload", "v1")
    data = b"".join(client.images.get("pyload:v1").save(named="pyload:v1"))
    client.images.remove("pyload:v1")
    loaded = client.images.load(data)
    check(len(loaded) == 1, "load returned %r" % loaded)
    check("pyload:v1" in loaded[0].tags, "loaded %r" % loaded[0].tags)
    for e in engines:
        check(e.images.get("pyload:v1").id, "pyload:v1 on %s" % e.api.base_url)
    # The raw stream: the engine's text once, every line with its node.
    chunks = list(client.api.load_image(data))
    texts = [c.get("stream", "") for c in chunks]
    check(texts.count("Loaded image: pyload:v1\n") == 1, "load stream %r" % chunks)
    check(all("Name" in c.get("node", {}) for c in chunks), "load lines without node %r" % chunks)

    # Import from the body: every node has it, it runs.
    c = client.containers.create("busybox")
    rootfs = b"".join(c.export())
    c.remove()
    client.api.import_image_from_data(
        rootfs, repository="pyimp", tag="v1", changes=['CMD ["echo", "imported-by-sdk"]']
    )
    for e in engines:
        check(e.images.get("pyimp:v1").id, "pyimp:v1 on %s" % e.api.base_url)
    out = client.containers.run("pyimp:v1", remove=True)
    check(out == b"imported-by-sdk\n", "run of the import: %r" % out)


def small_routes(client):
    try:
        client.images.get("gensokyo.jp//kirisame")
        raise SystemExit("docker-py through shoal: gensokyo.jp//kirisame found")
    except docker.errors.ImageNotFound:
        pass
    v = client.volumes.create("pyvol")
    listed = [x for x in client.api.volumes()["Volumes"] if x["Name"] == "pyvol"]
    check(listed == [v.attrs], "volume create %r, list %r" % (v.attrs, listed))
    ids = {i["Id"] for i in client.api.images(all=True)}
    check(client.info()["Images"] == len(ids), "info Images vs %d listed" % len(ids))


def build_then_run(client):
    # The cache image is on one node only (the test built it there); the build must go
    # where it is to use it, and the image (no tag: by its ID) must run right after.
    image, logs = client.images.build(
        fileobj=io.BytesIO(DOCKERFILE), cache_from=["cache:1"], rm=True
    )
    text = "".join(l.get("stream", "") for l in logs)
    check("Using cache" in text, "the build did not use the cache:\n" + text)
    out = client.containers.run(image.id, remove=True)
    check(out == b"built\n", "run right after the build: %r" % out)
    return image.id


def main(url, engine_urls):
    client = docker.DockerClient(base_url=url, version="auto", timeout=120)
    engines = [docker.DockerClient(base_url=u, version="auto", timeout=60) for u in engine_urls]
    what = sys.argv[1]
    if what == "routes":
        swarm(client)
        load_and_import(client, engines)
        small_routes(client)
    elif what == "build":
        built = build_then_run(client)
        having = [e.api.base_url for e in engines if any(i.id == built for i in e.images.list())]
        # The last engine is the one with the cache.
        check(having == [engines[-1].api.base_url], "the built image is on %r" % having)
    print("docker-py ok")


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3:])
