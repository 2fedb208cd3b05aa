#!/usr/bin/env bash
# Brings a machine (a fresh Debian one included) to the point where HMS runs and its tests pass:
# system packages, a running MariaDB with the app's databases and user, and the Python venv.
# Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

DB_USER=${HMS_DB_USER:-hms}
DB_PASSWORD=${HMS_DB_PASSWORD:-hms}
DB_NAMES=${HMS_DB_NAMES:-"hms hms_test"}

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages -------------------------------------------------------------------------
missing=()
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mysql >/dev/null || missing+=(mariadb-client)
[ -x /usr/bin/chromium ] || missing+=(chromium)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# WeasyPrint (PDF bills and prescriptions) draws text with Pango and needs a font.
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0.so.0 || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- MariaDB ---------------------------------------------------------------------------------
mysql_root() {
  # Debian's root logs in over the unix socket; some machines allow root with no password on TCP.
  mysql -uroot "$@" 2>/dev/null || mysql -uroot -h127.0.0.1 -P3306 "$@"
}
if ! mysqladmin -uroot -h127.0.0.1 -P3306 ping >/dev/null 2>&1 && ! mysqladmin -uroot ping >/dev/null 2>&1; then
  log "starting MariaDB"
  as_root mkdir -p /run/mysqld
  as_root chown mysql:root /run/mysqld
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- \
    --user=mysql --bind-address=127.0.0.1 --port=3306
  for _ in $(seq 1 60); do
    mysqladmin -uroot ping >/dev/null 2>&1 || mysqladmin -uroot -h127.0.0.1 ping >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
sql="CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';"
for db in $DB_NAMES; do
  sql+="CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$DB_USER'@'127.0.0.1';"
  if [[ $db == *_test ]]; then  # the suite's parallel workers each get one: hms_gw0_test, hms_gw1_test, ...
    pattern="${db%_test}\\_%\\_test"
    sql+="GRANT ALL PRIVILEGES ON \`$pattern\`.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`$pattern\`.* TO '$DB_USER'@'127.0.0.1';"
  fi
done
mysql_root -e "$sql"

# --- Python ----------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages"
  .venv/bin/pip install -q --disable-pip-version-check --no-compile -r requirements.txt  # modules compile when first imported
  echo "$want" > "$stamp"
fi
log "ready"
