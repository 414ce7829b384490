#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests, from Debian's postgresql-15 binaries.
#   scripts/pg-test-cluster.sh start DIR         initdb in DIR/data, start on a free 127.0.0.1 port, print the URL
#   scripts/pg-test-cluster.sh stop DIR          stop it and remove DIR/data
#   scripts/pg-test-cluster.sh url DIR           print the running cluster's URL
#   scripts/pg-test-cluster.sh run DIR -- CMD..  start, run CMD with EDGEOPT_TEST_POSTGRES_URL set, always stop;
#                                                exits with CMD's status. When EDGEOPT_TEST_POSTGRES_URL is
#                                                set already (an outer `run`, or your own server), just runs CMD.
# Works as root (initdb refuses root: the cluster runs as the `postgres` system user, or `nobody`
# when that does not exist) and as a normal user. Durability is off (fsync, synchronous_commit):
# the data is thrown away anyway.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2

[ -x "$PG_BIN/initdb" ] || die "no $PG_BIN/initdb: install Debian's postgresql package (scripts/install-deps.sh does)"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data="$dir/data"
log="$dir/postgres.log"

# As root, every PostgreSQL binary runs as an unprivileged user who owns the data folder.
as_db_user() { "$@"; }
db_user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then db_user=postgres; else db_user=nobody; fi
  as_db_user() { runuser -u "$db_user" -- "$@"; }
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_cluster() {
  if [ -f "$data/postmaster.pid" ]; then
    as_db_user "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data" "$dir/url"
}

start_cluster() {
  stop_cluster  # a cluster left behind by an interrupted run
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$db_user" "$dir" "$data"
    # The user must be able to reach DIR: every parent folder needs search permission for it.
    as_db_user test -x "$dir" || die "user $db_user cannot reach $dir (a parent folder is not searchable); use a folder under /tmp"
  fi
  chmod 700 "$data"
  as_db_user "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
    die "initdb failed; see $dir/initdb.log"
  local port
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    # Unix sockets off: the default socket folder (/var/run/postgresql) is root's.
    if as_db_user "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      local url="postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$url" >"$dir/url"
      echo "$url"
      return 0
    fi
    [ "$attempt" -lt 5 ] && echo "pg-test-cluster: port $port was taken, retrying" >&2
  done
  die "PostgreSQL did not start; see $log"
}

case "$cmd" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  url) [ -f "$dir/url" ] || die "no cluster running in $dir"; cat "$dir/url" ;;
  run)
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || usage
    [ -n "${EDGEOPT_TEST_POSTGRES_URL:-}" ] && exec "$@"
    url=$(start_cluster)
    trap stop_cluster EXIT
    trap 'exit 130' INT TERM
    echo "pg-test-cluster: PostgreSQL for the tests at $url" >&2
    set +e
    EDGEOPT_TEST_POSTGRES_URL=$url "$@"
    status=$?
    set -e
    exit $status
    ;;
  *) usage ;;
esac
