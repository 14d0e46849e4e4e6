#!/bin/sh
# First start: initdb into $PGDATA and create $POSTGRES_USER (password from $POSTGRES_PASSWORD_FILE or
# $POSTGRES_PASSWORD) owning each database of $POSTGRES_DB (space separated). Every start: exec postgres,
# listening on every address, password (scram-sha-256) logins from the network, extra arguments passed on.
set -eu
: "${PGDATA:?}" "${POSTGRES_USER:=btcf}" "${POSTGRES_DB:=btcf}"

password() {
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then cat "$POSTGRES_PASSWORD_FILE"; else printf '%s' "${POSTGRES_PASSWORD:-}"; fi
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  secret="$(password)"
  [ -n "$secret" ] || { echo "btcf-postgres: set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD" >&2; exit 1; }
  echo "btcf-postgres: initdb into $PGDATA" >&2
  initdb -D "$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >&2
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  quoted="$(printf '%s' "$secret" | sed "s/'/''/g")"
  {
    printf "CREATE ROLE \"%s\" LOGIN PASSWORD '%s'\n" "$POSTGRES_USER" "$quoted"
    for db in $POSTGRES_DB; do printf 'CREATE DATABASE "%s" OWNER "%s"\n' "$db" "$POSTGRES_USER"; done
  } | postgres --single -D "$PGDATA" -c password_encryption=scram-sha-256 postgres >/dev/null
  echo "btcf-postgres: role $POSTGRES_USER, databases: $POSTGRES_DB" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
