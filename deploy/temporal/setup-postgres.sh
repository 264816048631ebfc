#!/bin/sh
# One-shot (temporalio/admin-tools): create Temporal's two PostgreSQL databases and bring their
# schemas to the version this admin-tools image ships, as Temporal's own compose examples do.
# Safe to run on every `docker compose up`: `create` skips an existing database, `setup-schema -v 0.0`
# keeps a newer version, and `update-schema` applies only the missing versions.
set -eu

host="${POSTGRES_SEEDS:?}"
port="${DB_PORT:-5432}"
user="${POSTGRES_USER:?}"
: "${SQL_PASSWORD:?SQL_PASSWORD (the PostgreSQL password) is required}"
schemas=/etc/temporal/schema/postgresql/v12

until nc -z "$host" "$port"; do
  echo "waiting for PostgreSQL at $host:$port"
  sleep 1
done

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db="${pair%%:*}"
  kind="${pair##*:}"
  echo "setting up database $db ($kind schema)"
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" create
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" --db "$db" \
    update-schema -d "$schemas/$kind/versioned"
done
echo "Temporal schema is up to date"
