"""The contract suite on the SASL memcached backend (pylibmc), against a memcached that
requires SASL authentication (``memcached -S``, a user in a sasldb of its own).

Needs pylibmc and ``saslpasswd2`` (Debian: sasl2-bin); skipped without pylibmc.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_stash.core.api import Backend, SupportsAtomicAdd, SupportsIncrement, SupportsLock
from flask_stash.core.backends.memcached import SASLMemcachedBackend
from flask_stash.core.errors import BackendError
from flask_stash.testing import BackendContract, FakeClock

from .. import servers

USER, PASSWORD = "stash", "s3cret-pw"
# The manylinux pylibmc wheel bundles a libsasl2 that looks for its mechanism plugins
# elsewhere than Debian puts them; it reads SASL_PATH once, when pylibmc is imported.
DEBIAN_SASL_PLUGINS = "/usr/lib/x86_64-linux-gnu/sasl2"
if Path(DEBIAN_SASL_PLUGINS).is_dir():
    os.environ.setdefault("SASL_PATH", DEBIAN_SASL_PLUGINS)
if os.environ.get("CI") != "true":  # `make test` installs it: a missing one fails in CI
    pytest.importorskip("pylibmc", reason="the SASL backend needs pylibmc")
pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def sasl_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    binary = servers.require_binary("memcached")
    saslpasswd2 = servers.require_binary("saslpasswd2")
    workdir = tmp_path_factory.mktemp("memcached-sasl")
    sasldb = workdir / "sasldb2"
    subprocess.run(
        [saslpasswd2, "-p", "-a", "memcached", "-f", str(sasldb), "-c", USER],
        input=PASSWORD.encode(), check=True, timeout=30,
    )  # fmt: skip
    (workdir / "memcached.conf").write_text(f"mech_list: plain\nsasldb_path: {sasldb}\n")
    port = servers.free_port()
    args = [binary, "-S", "-l", servers.HOST, "-p", str(port), "-U", "0", "-m", "64"]
    args += ["-I", "2m", "-u", "root"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SASL_CONF_PATH", str(workdir))  # read by the server process
        with servers.running(args, port, workdir) as node:
            yield node


class TestSASLMemcached(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _node(self, sasl_node: servers.Server) -> None:
        self.address = sasl_node.address

    def make_backend(self, clock: FakeClock) -> Backend:
        return SASLMemcachedBackend([self.address], username=USER, password=PASSWORD)

    def ttl(self, seconds: float) -> float:
        return seconds / 2  # memcached's TTLs are whole seconds: 0.5 s is one tick

    def wait(self, clock: FakeClock, seconds: float) -> None:
        time.sleep(seconds + 0.25)  # past the server's next whole-second tick

    def test_capabilities(self, backend: Backend) -> None:
        assert isinstance(backend, SupportsAtomicAdd)
        assert isinstance(backend, SupportsIncrement)
        assert isinstance(backend, SupportsLock)


@pytest.mark.parametrize(("user", "password"), [(USER, "wrong"), (None, None)])
def test_the_server_refuses_wrong_credentials(
    sasl_node: servers.Server, user: str | None, password: str | None
) -> None:
    backend = SASLMemcachedBackend([sasl_node.address], username=user, password=password)
    with contextlib.closing(backend), pytest.raises(BackendError):
        backend.set("k", b"v", None)


def test_a_refused_increment_reconnects_authenticated(sasl_node: servers.Server) -> None:
    """memcached refuses to ``incr`` "-2"; the backend reconnects (libmemcached marked the
    server failed) and must authenticate again for the compare-and-set that follows."""
    backend = SASLMemcachedBackend([sasl_node.address], username=USER, password=PASSWORD)
    with contextlib.closing(backend):
        assert backend.incr("refused", -2, 60) == -2
        assert backend.incr("refused", 5, 60) == 3
        assert backend.get("refused") == b"3"
