#!/usr/bin/env bash
# Stand-in for the official redis image's entrypoint (docker-library/redis), for
# Debian's Redis: an option or a *.conf as first argument gets `redis-server` put
# before it; `redis-server ...` runs in the foreground as user redis, with umask
# 0077, and not in protected mode (the official image builds Redis with
# protected-mode off by default: its network is the container's). A
# `--protected-mode` argument, or a protected-mode line in the config file given,
# still wins. Anything else is run as it is.
set -Eeuo pipefail

if [[ ${1:-} == -* || ${1:-} == *.conf ]]; then
    set -- redis-server "$@"
fi
if [[ ${1:-} != redis-server ]]; then
    exec "$@"
fi

if [[ $(id -u) -eq 0 ]]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
fi

um=$(umask)
[[ $um != 0022 ]] || umask 0077

given=false
for arg in "${@:2}"; do
    [[ $arg != --protected-mode ]] || given=true
done
if [[ ${2:-} == *.conf && -r ${2:-} ]] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$2"; then
    given=true
fi
if [[ $given == false ]]; then
    set -- "$@" --protected-mode no
fi
exec "$@"
