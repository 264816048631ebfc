#!/usr/bin/env bash
# The simulator container: the Videos API simulator refuses to serve anywhere but loopback, so it
# listens on 127.0.0.1:8091 and socat relays the compose network's port 8090 to it. The port is not
# published to the host. When either process ends the container ends, and its restart policy starts
# both again.
set -euo pipefail

python -m simulator --host 127.0.0.1 --port 8091 --time-scale "${SIMULATOR_TIME_SCALE:-0.1}" &
socat TCP-LISTEN:8090,fork,reuseaddr TCP:127.0.0.1:8091 &
# docker stop: stop both, and call it a clean exit.
trap 'kill -TERM $(jobs -p) 2>/dev/null || true; wait || true; exit 0' TERM INT
status=0
wait -n || status=$?
kill -TERM $(jobs -p) 2>/dev/null || true
wait || true
exit "$status"
