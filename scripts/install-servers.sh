#!/usr/bin/env bash
# Install the servers the test suite runs for real (redis-server, memcached, and sasl2-bin
# for memcached's SASL accounts) and the headless browser that renders the dashboard and the
# demo (chromium, with a font) when they are
# missing and this machine can: root (or passwordless sudo) with apt-get. Otherwise warn:
# server and browser tests then skip on a laptop, and fail in CI (CI=true).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v saslpasswd2 >/dev/null 2>&1 || missing+=(sasl2-bin libsasl2-modules)  # the SASL memcached test
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # benchmarks only
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)  # the browser tests
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "warning: ${missing[*]} missing and no root: server tests will be skipped" >&2
        exit 0
    fi
    echo "installing ${missing[*]} (Debian packages) for the server and browser tests"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    echo "warning: ${missing[*]} missing and no apt-get: server tests will be skipped" >&2
fi
