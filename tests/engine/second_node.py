"""A second Docker Engine on this machine, as a second swarm node: its own network namespace
joined to the host by a veth pair on a private test subnet, its own data root and socket.

`ip netns exec` gives the engine a mount namespace whose /sys belongs to its network namespace
(libnetwork needs that for its bridges) and so hides the host's cgroup mounts: the wrapper
script mounts the cgroup v1 hierarchies again before it starts dockerd. The node has no route
out: image pulls fail at once and it runs the images loaded into it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

NAMESPACE = "ct-test-node2"
HOST_LINK, NODE_LINK = "ct-test-veth0", "ct-test-veth1"
HOST_IP, NODE_IP = "10.213.0.1", "10.213.0.2"
ROOT = Path("/var/lib/ct-test-node2")
RUN = Path("/run/ct-test-node2")
SOCKET = RUN / "docker.sock"
WRAPPER = Path(__file__).parent / "node" / "dockerd-in-netns"


def run(*args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
    return result


class Node:
    """The second engine: `docker` runs its CLI against it."""

    def docker(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        return run("docker", "-H", f"unix://{SOCKET}", *args, check=check, input=input).stdout.decode()

    def load(self, *images: str) -> None:
        """Images of this machine's engine, into the node's."""
        saved = run("docker", "save", *images).stdout
        self.docker("load", input=saved)


def _clean() -> None:
    pid_file = RUN / "dockerd.pid"
    if pid_file.exists():
        run("kill", pid_file.read_text().strip(), check=False)
        for _ in range(100):
            if not pid_file.exists():
                break
            time.sleep(0.1)
    run("ip", "netns", "del", NAMESPACE, check=False)
    run("ip", "link", "del", HOST_LINK, check=False)
    for path in (ROOT, RUN):
        run("umount", "-R", str(path), check=False)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def second_engine() -> Iterator[Node]:
    _clean()  # what a killed earlier run left
    try:
        run("ip", "netns", "add", NAMESPACE)
        run("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", NODE_LINK)
        run("ip", "link", "set", NODE_LINK, "netns", NAMESPACE)
        run("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_LINK)
        run("ip", "link", "set", HOST_LINK, "up")
        for command in (("ip", "addr", "add", f"{NODE_IP}/24", "dev", NODE_LINK),
                        ("ip", "link", "set", NODE_LINK, "up"), ("ip", "link", "set", "lo", "up")):
            run("ip", "netns", "exec", NAMESPACE, *command)
        ROOT.mkdir(parents=True)
        RUN.mkdir(parents=True)
        with open(RUN / "dockerd.log", "wb") as log:
            subprocess.Popen(["ip", "netns", "exec", NAMESPACE, str(WRAPPER), "--data-root", str(ROOT),
                              "--exec-root", str(RUN), "--pidfile", str(RUN / "dockerd.pid"),
                              "-H", f"unix://{SOCKET}"], stdout=log, stderr=log, start_new_session=True)
        node = Node()
        for _ in range(120):
            if node.docker("info", "--format", "{{.ServerVersion}}", check=False).strip():
                break
            time.sleep(0.25)
        else:
            raise AssertionError("the second engine did not start:\n" + (RUN / "dockerd.log").read_text()[-2000:])
        yield node
    finally:
        _clean()
