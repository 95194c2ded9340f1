#!/bin/sh
# As the official image's entrypoint: a bare `redis-server` (no config file) takes connections
# from other containers.
set -e
if [ "$1" = "redis-server" ]; then
  shift
  set -- redis-server --bind 0.0.0.0 --protected-mode no "$@"
fi
exec "$@"
