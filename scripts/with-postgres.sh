#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL (Debian's postgresql package, installed by
# scripts/setup.sh): a fresh cluster in a temporary folder, on a Unix socket there, trusted local
# connections, stopped and deleted afterwards. The command sees its address in
# LIVENESS_TEST_POSTGRES (the server's shared-database test uses it), and in
# LIVENESS_TEST_POSTGRES_CTL a script that stops and starts it (`ctl stop`, `ctl start`: the
# test's database restart).
#
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "error: PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/setup.sh)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/liveness-pg.XXXXXX)
# No TCP port (finding a free one and handing it over races with other programs): the server
# listens only on a Unix socket in its own private folder, so any port number names it.
port=5432
# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
stop() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses= -c fsync=off" start >/dev/null
export LIVENESS_TEST_POSTGRES="postgres://postgres@localhost/postgres?host=$dir&port=$port"
run_as=""
[ "$(id -u)" = 0 ] && run_as="runuser -u postgres --"
cat >"$dir/ctl" <<CTL
#!/bin/sh
# Stops or starts the throw-away PostgreSQL of scripts/with-postgres.sh: ctl stop|start
case "\$1" in
  stop) exec $run_as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop ;;
  start) exec $run_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses= -c fsync=off" start ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
CTL
chmod 755 "$dir/ctl"
export LIVENESS_TEST_POSTGRES_CTL="$dir/ctl"
echo "[with-postgres] PostgreSQL on the Unix socket in $dir"
"$@"
