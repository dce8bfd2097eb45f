"""Real servers for tests: redis-server (single, cluster, sentinel) and memcached.

Each server runs on a free loopback port in a temporary directory and is stopped by PID.
A missing binary skips the test on a developer machine and fails it in CI (``CI=true``),
where ``make test`` installs the Debian packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 15.0


def require_binary(name: str) -> str:
    """The binary's path; skip (locally) or fail (in CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install redis-server memcached)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")


@dataclass
class Server:
    """One running server process."""

    port: int
    process: subprocess.Popen[bytes]
    args: list[str] = field(default_factory=list)
    #: Where it runs (its log, a cluster node's ``nodes-<port>.conf``): a restart reuses it.
    cwd: Path | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            # A server left paused (SIGSTOP) would hold SIGTERM until resumed.
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def running(args: Sequence[str], port: int, cwd: Path) -> Iterator[Server]:
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen(list(args), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    server = Server(port, process, list(args), cwd)
    try:
        wait_for_port(port, process)
        yield server
    finally:
        server.stop()
        log.close()


def redis_args(port: int, *extra: str) -> list[str]:
    binary = require_binary("redis-server")
    return [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", *extra]


@contextmanager
def redis_server(workdir: Path, *extra: str) -> Iterator[Server]:
    port = free_port()
    with running(redis_args(port, *extra), port, workdir) as server:
        yield server


def redis_cli(*args: str) -> str:
    cli = require_binary("redis-cli")
    done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


@contextmanager
def redis_cluster(workdir: Path, masters: int = 3, *extra: str) -> Iterator[list[Server]]:
    """``masters`` cluster nodes with all 16384 slots assigned, state ok; ``extra``: more
    ``redis-server`` arguments for every node."""
    with ExitStack() as stack:
        nodes = []
        for _ in range(masters):
            port = free_cluster_port()
            conf = f"nodes-{port}.conf"
            args = redis_args(
                port, "--cluster-enabled", "yes", "--cluster-config-file", conf, *extra
            )
            nodes.append(stack.enter_context(running(args, port, workdir)))
        redis_cli("--cluster", "create", *(n.address for n in nodes), "--cluster-yes")
        wait_cluster_ok(nodes)
        yield nodes


def wait_cluster_ok(nodes: Sequence[Server], timeout: float = START_TIMEOUT) -> None:
    """Return once every node reports ``cluster_state:ok``; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [redis_cli("-p", str(n.port), "cluster", "info") for n in nodes]
        if all("cluster_state:ok" in state for state in states):
            return
        time.sleep(0.1)
    raise RuntimeError("redis cluster did not reach cluster_state:ok")


@dataclass
class SentinelSet:
    master: Server
    replica: Server
    sentinel: Server
    service: str = "mymaster"


@contextmanager
def redis_sentinel(workdir: Path, service: str = "mymaster") -> Iterator[SentinelSet]:
    """A master, a replica of it and one sentinel watching the master (quorum 1)."""
    with ExitStack() as stack:
        # Redis 7 waits 5 s before syncing a new replica unless told not to.
        master = stack.enter_context(redis_server(workdir, "--repl-diskless-sync-delay", "0"))
        replica = stack.enter_context(redis_server(workdir, "--replicaof", HOST, str(master.port)))
        port = free_port()
        conf = workdir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind {HOST}\n"
            f"sentinel monitor {service} {HOST} {master.port} 1\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
            f"sentinel failover-timeout {service} 3000\n"
        )
        binary = require_binary("redis-server")
        sentinel = stack.enter_context(running([binary, str(conf), "--sentinel"], port, workdir))
        yield SentinelSet(master, replica, sentinel, service)


@contextmanager
def memcached_nodes(workdir: Path, count: int = 2) -> Iterator[list[Server]]:
    binary = require_binary("memcached")
    with ExitStack() as stack:
        nodes = []
        for _ in range(count):
            port = free_port()
            args = [binary, "-l", HOST, "-p", str(port), "-U", "0", "-m", "64", "-u", "root"]
            nodes.append(stack.enter_context(running(args, port, workdir)))
        yield nodes


# -- outages: a server hung (SIGSTOP) or dead (SIGKILL), always brought back -----------------
#
# A paused server still accepts connections (the kernel completes the handshake) but never
# answers: every client call waits for its socket timeout, as with a hung host. A killed one
# refuses connections at once. The context managers bring the server back in ``finally``
# and wait, bounded, until it answers (and the cluster it belongs to is ok again), so the
# session's shared servers are healthy for the next test whatever the block did.

#: How long a resumed or restarted server (and its cluster) may take to be healthy again.
RECOVER_TIMEOUT = 15.0


def answers(server: Server, timeout: float = 0.2) -> bool:
    """Whether ``server`` replies now: Redis to ``PING``, memcached to ``version``."""
    is_memcached = Path(server.args[0]).name == "memcached" if server.args else False
    probe = b"version\r\n" if is_memcached else b"PING\r\n"
    try:
        with socket.create_connection((HOST, server.port), timeout=timeout) as sock:
            sock.sendall(probe)
            return bool(sock.recv(64))
    except OSError:
        return False


def wait_answers(server: Server, timeout: float = RECOVER_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not answers(server):
        if server.process.poll() is not None:
            raise RuntimeError(f"server on port {server.port} exited")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {server.port} did not answer within {timeout}s")
        time.sleep(0.02)


def pause(server: Server) -> None:
    """SIGSTOP: the server hangs. Prefer :func:`paused`, which always resumes it."""
    server.process.send_signal(signal.SIGSTOP)


def resume(server: Server, cluster: Sequence[Server] = ()) -> None:
    """SIGCONT, then wait until it answers and ``cluster`` (its nodes) is ok. Idempotent."""
    server.process.send_signal(signal.SIGCONT)
    wait_answers(server)
    if cluster:
        wait_cluster_ok(cluster, RECOVER_TIMEOUT)


def kill(server: Server) -> None:
    """SIGKILL, reaped. Prefer :func:`killed`, which always restarts it."""
    if server.process.poll() is None:
        server.process.kill()
    server.process.wait(timeout=10)


def restart(server: Server, cluster: Sequence[Server] = ()) -> None:
    """Start a stopped ``server`` again: same port, arguments and directory (a cluster node
    rejoins from its ``nodes-<port>.conf``), empty. ``server.process`` becomes the new
    process, so whoever started it still stops it. A no-op if it is running."""
    if server.process.poll() is None:
        return
    cwd = server.cwd or Path.cwd()
    with (cwd / f"server-{server.port}.log").open("ab") as log:
        server.process = subprocess.Popen(
            server.args, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
    wait_for_port(server.port, server.process)
    wait_answers(server)
    if cluster:
        wait_cluster_ok(cluster, RECOVER_TIMEOUT)


@contextmanager
def paused(server: Server, cluster: Sequence[Server] = ()) -> Iterator[Server]:
    """``server`` hung (SIGSTOP) for the block, resumed in ``finally`` (:func:`resume`).

    Give ``cluster`` (all its nodes) when ``server`` is a cluster node: the block's exit
    then also waits for ``cluster_state:ok``. Keep the block shorter than the nodes'
    ``cluster-node-timeout`` (15 s) so the others never mark the node failed.
    """
    pause(server)
    try:
        yield server
    finally:
        resume(server, cluster)


@contextmanager
def killed(server: Server, cluster: Sequence[Server] = ()) -> Iterator[Server]:
    """``server`` dead (SIGKILL) for the block, restarted empty on its port in ``finally``
    unless the block restarted it already (:func:`restart`, to watch the recovery)."""
    kill(server)
    try:
        yield server
    finally:
        restart(server, cluster)


def memcached_dump(node: Server) -> str:
    """Every key ``node`` holds (``lru_crawler metadump``), URL-decoded, as one text."""
    import socket
    from urllib.parse import unquote

    with socket.create_connection((HOST, node.port), timeout=2) as sock:
        sock.sendall(b"lru_crawler metadump all\r\n")
        dump = b""
        while not dump.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            dump += chunk
    return unquote(dump.decode("utf-8", "replace"))
