"""What memcached tests share: a plain text-protocol client on a test server, to look
behind the backend, and the remaining TTL the server holds for a key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymemcache.client.base import Client

from .. import servers


@contextmanager
def text_client(node: servers.Server) -> Iterator[Client]:
    client = Client((servers.HOST, node.port), default_noreply=False, timeout=2)
    try:
        yield client
    finally:
        client.close()


def remaining_ttl(raw: Client, wire: bytes) -> int | None:
    """The server's remaining TTL for the stored key ``wire`` (meta get): -1 never
    expires, ``None`` absent."""
    reply = raw.raw_command(b"mg " + wire + b" t")
    return int(reply.split(b" t", 1)[1]) if reply.startswith(b"HD") else None
