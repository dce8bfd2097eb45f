"""The client options every Redis backend shares: defaults, the retry policy, and the
errors a wrong option gives (exact wording: it is what the user reads)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from flask_stash.core.backends._redis_options import (
    REDIS_PARAMS,
    checked,
    connection_retry,
    reject_decoding,
    valid_namespace,
    with_defaults,
)
from flask_stash.core.errors import ConfigurationError


class Flaky:
    """A command that fails with ``errors`` in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "PONG"


def run(command: Flaky) -> str:
    seen: list[Exception] = []
    return connection_retry().call_with_retry(command, seen.append)


def test_a_dropped_connection_is_retried_once_at_once() -> None:
    command = Flaky(redis.exceptions.ConnectionError("reset by peer"))
    assert run(command) == "PONG"
    assert command.calls == 2


def test_a_second_drop_is_the_caller_s_error() -> None:
    second = redis.exceptions.ConnectionError("still down")
    command = Flaky(redis.exceptions.ConnectionError("reset"), second)
    with pytest.raises(redis.exceptions.ConnectionError) as raised:
        run(command)
    assert (raised.value, command.calls) == (second, 2)


@pytest.mark.parametrize(
    "error", [redis.exceptions.TimeoutError("slow"), TimeoutError("slow"), OSError("odd")]
)
def test_a_timed_out_command_is_not_sent_again(error: Exception) -> None:
    # It may have run: SET NX or INCRBY must not run twice.
    command = Flaky(error)
    with pytest.raises(type(error)):
        run(command)
    assert command.calls == 1


def test_defaults_are_overridable() -> None:
    options = with_defaults({"socket_timeout": 5, "db": 2})
    assert options["socket_timeout"] == 5
    assert options["socket_connect_timeout"] == 1.0
    assert options["health_check_interval"] == 30
    assert options["db"] == 2
    assert with_defaults({"retry": None})["retry"] is None
    assert set(with_defaults({})) <= REDIS_PARAMS  # every default is a client option


def test_known_options_pass_unchanged() -> None:
    options = {"socket_timeout": 2, "decode_responses": False}
    assert checked(REDIS_PARAMS, options, "RedisBackend") is options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bogus": 1}, "RedisBackend: unknown Redis option(s) bogus"),
        ({"zeta": 1, "alpha": 2, "db": 0}, "RedisBackend: unknown Redis option(s) alpha, zeta"),
        (
            {"decode_responses": True},
            "decode_responses=True is not supported: cache values are bytes",
        ),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        checked(REDIS_PARAMS, options, "RedisBackend")
    assert str(raised.value) == message


@pytest.mark.parametrize("value", [False, None, 0])
def test_decoding_off_is_accepted(value: object) -> None:
    reject_decoding({"decode_responses": value})
    reject_decoding({})


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        (None, "namespace must be a str, not NoneType"),
        (b"app:", "namespace must be a str, not bytes"),
        (3, "namespace must be a str, not int"),
    ],
)
def test_a_namespace_is_a_str(namespace: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        valid_namespace(namespace)
    assert str(raised.value) == message
    assert valid_namespace("app:") == "app:"
    assert valid_namespace("") == ""
