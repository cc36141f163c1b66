#!/usr/bin/env bash
# A throwaway PostgreSQL + pgvector server for the gallery tests and benchmarks (used by .ci/run too).
#
#   eval "$(scripts/postgres_server.sh start /tmp/pf-pg)"   # prints `export PARTIALFACE_TEST_POSTGRES=...`
#   scripts/postgres_server.sh stop /tmp/pf-pg               # stops the server and deletes the folder
#
# Which server: $PG_BINDIR when set; else a Debian PostgreSQL whose share folder has pgvector
# (`apt-get install postgresql postgresql-NN-pgvector` where the release packages it -- bookworm does not);
# else the PostgreSQL 16 + pgvector 0.6 binaries inside the `pgserver` wheel of the project's `test` extra
# (found with $PYTHON, default .venv/bin/python). The cluster lives in the given folder, listens on
# 127.0.0.1 only (a free port) and on a unix socket in that folder, trusts local connections (it holds
# test data only) and runs with fsync off; $PG_EXTRA_OPTIONS adds server settings ("-c shared_buffers=2GB").
# PostgreSQL refuses to run as root, so as root the cluster is run by the unprivileged user $PG_RUN_AS
# (default nobody), with the binaries copied into the folder when that user cannot reach them in place.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$2
PYTHON=${PYTHON:-.venv/bin/python}
RUN_AS=${PG_RUN_AS:-nobody}
DB=${PG_DATABASE:-partialface_test}

as_owner() {  # run a command as the cluster's owner
    if [[ $(id -u) -eq 0 ]]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

find_bindir() {
    if [[ -n ${PG_BINDIR:-} ]]; then echo "$PG_BINDIR"; return; fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -f $("$d/pg_config" --sharedir)/extension/vector.control ]]; then echo "$d"; return; fi
    done
    local wheel
    wheel=$("$PYTHON" - <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec("pgserver")
print(os.path.join(spec.submodule_search_locations[0], "pginstall") if spec else "")
EOF
)
    if [[ -z $wheel || ! -x $wheel/bin/postgres ]]; then
        echo "no PostgreSQL with pgvector found: install the test extra (pip install -e '.[test]', which" \
             "brings the pgserver wheel), or a Debian postgresql-NN-pgvector package, or set PG_BINDIR" >&2
        exit 1
    fi
    echo "$wheel/bin"
}

start() {
    if [[ -e $dir && -n $(ls -A "$dir") ]]; then echo "$dir is not empty: give a new folder" >&2; exit 1; fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local bindir
    bindir=$(find_bindir)
    if [[ $(id -u) -eq 0 ]]; then
        chown "$RUN_AS" "$dir"
        if ! runuser -u "$RUN_AS" -- test -x "$bindir/postgres"; then
            # the pgserver wheel's layout: pgserver/pginstall/{bin,lib,share} and pgserver.libs beside it
            local site=$bindir/../../..
            mkdir -p "$dir/install/pgserver"
            cp -a "$bindir/.." "$dir/install/pgserver/pginstall"
            [[ -d $site/pgserver.libs ]] && cp -a "$site/pgserver.libs" "$dir/install/"
            chmod -R a+rX "$dir/install"
            bindir=$dir/install/pgserver/pginstall/bin
        fi
    fi
    local port
    port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    echo "$bindir" >"$dir/bindir"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 ${PG_EXTRA_OPTIONS:-}" >/dev/null \
        || { cat "$dir/data/server.log" >&2; exit 1; }
    local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
    "${psql[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
    "${psql[@]}" -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    echo "export PARTIALFACE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$port/$DB"
}

stop() {
    [[ -f $dir/bindir ]] || { echo "$dir holds no cluster started by $0" >&2; return 0; }
    if [[ -e $dir/data/postmaster.pid ]]; then
        as_owner "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case $action in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
