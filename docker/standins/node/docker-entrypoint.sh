#!/bin/sh
# As the official node image's: run the command with node when the first argument
# is an option, not a command on PATH, or a file that is not executable.
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
    set -- node "$@"
fi
exec "$@"
