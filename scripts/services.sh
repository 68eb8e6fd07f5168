#!/usr/bin/env bash
# Make sure the services the integration tests talk to are up on 127.0.0.1:
#   PostgreSQL :5432 (trust auth, user postgres, database test)
#   MariaDB    :3306 (root with an empty password, database test)
#   Redis      :6379
# A service that already answers is left alone, so this is quick and silent on a
# machine that runs them. Otherwise it is installed from Debian's packages if
# missing, configured and started. There is no systemd here: each daemon is
# started directly.
set -euo pipefail

WAIT_SECONDS=30

log() { echo "services: $*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Fallback probe for when the client tools are not installed yet.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pg_up() {
  if have pg_isready; then pg_isready -q -h 127.0.0.1 -p 5432; else port_open 5432; fi
}
mysql_up() {
  # ping succeeds as soon as the server answers, even before root can log in.
  if have mysqladmin; then
    mysqladmin -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 ping >/dev/null 2>&1
  else port_open 3306; fi
}
redis_up() {
  if have redis-cli; then redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; else port_open 6379; fi
}

wait_for() { # name probe log
  local i
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    "$2" && return 0
    sleep 1
  done
  die "$1 did not answer on 127.0.0.1 within ${WAIT_SECONDS}s (see $3)"
}

# Run a command that leaves a daemon behind with no descriptor but stdin, stdout
# and stderr: an inherited pipe would keep whoever ran this script (CI) waiting
# for an end of output that never comes.
detach() {
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec "$@"
  ) </dev/null
}

# shellcheck disable=SC2012 # version directories are plain numbers
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true; }

# --- install whatever is down and missing, with a single apt run ---------------
missing=()
pg_up || [[ -n "$(pg_version)" ]] || missing+=(postgresql)
mysql_up || [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
redis_up || have redis-server || missing+=(redis-server)
# Node.js runs the GraphQL-over-HTTP audit (tests/audit) against the gateway.
have node || missing+=(nodejs)
have npm || missing+=(npm)
# Debian's Chromium runs the dashboard's and GraphiQL's browser tests (tests/browser).
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# The deploy/ checks (tests/deploy): a Python venv for their pinned tools, and Podman with
# runc and mmdebstrap to build the image on a Debian base made here.
have python3 || missing+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
have podman || missing+=(podman)
have runc || missing+=(runc)
have mmdebstrap || missing+=(mmdebstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
installed=" ${missing[*]-} "

# --- PostgreSQL -----------------------------------------------------------------
if ! pg_up || [[ $installed == *" postgresql "* ]]; then
  ver=$(pg_version)
  [[ -n $ver ]] || die "no PostgreSQL cluster under /etc/postgresql"
  conf=/etc/postgresql/$ver/main
  # The tests connect over TCP as postgres without a password. pg_hba.conf is
  # read top-down, so trust rules put first win over Debian's scram defaults.
  if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
  fi
  if [[ ! -e $conf/conf.d/simpul.conf ]]; then
    mkdir -p "$conf/conf.d"
    echo "listen_addresses = '127.0.0.1'" >"$conf/conf.d/simpul.conf"
  fi
  # Restart if the package's own scripts already started it, so the
  # configuration above takes effect.
  if pg_up; then action=restart; else action=start; fi
  log "PostgreSQL $ver: $action"
  detach pg_ctlcluster --skip-systemctl-redirect "$ver" main "$action" ||
    die "PostgreSQL $ver did not start (see /var/log/postgresql)"
  wait_for PostgreSQL pg_up /var/log/postgresql
  if [[ -z $(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'") ]]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test'
  fi
fi

# --- MariaDB --------------------------------------------------------------------
if ! mysql_up || [[ $installed == *" mariadb-server "* ]]; then
  if ! mysql_up; then
    log "MariaDB: start"
    # The server puts its socket and pid file here; /run is empty after a reboot.
    install -d -o mysql -g mysql /run/mysqld
    mkdir -p /var/log/mysql
    # --user: Debian's own config leaves that to its service files, and
    # mariadbd refuses to run as root.
    detach start-stop-daemon --start --oknodo --background \
      --output /var/log/mysql/ci.log --exec /usr/sbin/mariadbd -- --user=mysql
    wait_for MariaDB mysql_up /var/log/mysql
  fi
  # Debian's root@localhost authenticates by unix socket only; the tests log in
  # over TCP with an empty password. The server may resolve 127.0.0.1 to
  # localhost or not (skip-name-resolve), so both accounts must accept it.
  if ! mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE IF NOT EXISTS test' 2>/dev/null; then
    mariadb -u root <<'SQL'
ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
SQL
    mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null ||
      die "MariaDB is up but root cannot log in over TCP with an empty password"
  fi
fi

# --- Redis ----------------------------------------------------------------------
if ! redis_up; then
  log "Redis: start"
  mkdir -p /var/lib/redis /var/log/redis
  # Nothing is persisted: test data is throwaway.
  detach redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up /var/log/redis/ci.log
fi
