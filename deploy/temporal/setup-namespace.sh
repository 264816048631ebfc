#!/bin/sh
# One-shot (temporalio/admin-tools): create the namespace if it is missing and register the custom
# search attributes the workflow publishes. Safe to run on every `docker compose up`: creating an
# attribute that exists with the same type succeeds.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-168h}"

# Keep in step with sora_temporal/search_attributes.py (tests/deploy/test_compose_rules.py checks it).
SEARCH_ATTRIBUTES="SoraStatus:Keyword SoraVideoId:Keyword SoraProgress:Int SoraModel:Keyword"

# Temporal's compose examples resolve the server to an IPv4 address first: the CLI can otherwise
# pick an address the server does not listen on.
host="${address%:*}"
port="${address##*:}"
ip="$(getent ahosts "$host" | awk '/STREAM/ { print $1; exit }')"
address="${ip:-$host}:$port"

retry() {
  # A new namespace reaches every server cache within seconds; until then calls can fail.
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge 30 ]; then
      echo "giving up after $attempt attempts: $*" >&2
      return 1
    fi
    attempt=$((attempt + 1))
    sleep 2
  done
}

echo "waiting for Temporal at $address"
retry temporal operator cluster health --address "$address"

if ! temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
  echo "creating namespace $namespace (retention $retention)"
  retry temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"
fi

for attribute in $SEARCH_ATTRIBUTES; do
  name="${attribute%%:*}"
  type="${attribute##*:}"
  echo "search attribute $name ($type)"
  retry temporal operator search-attribute create --address "$address" --namespace "$namespace" \
    --name "$name" --type "$type"
done
echo "namespace $namespace is ready"
