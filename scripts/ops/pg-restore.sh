#!/usr/bin/env bash
# Restore a backup made by pg-backup.sh into an empty (or missing) database.
#   scripts/ops/pg-restore.sh DATABASE_URL BACKUP_FILE
# The database is created when it does not exist; one that has tables is refused (restore into a
# new database, then point database_url at it). All or nothing: one transaction, stop on any error.
# Afterwards run `inferlab db upgrade` when the backup predates the running version's schema.
set -euo pipefail
url=${1:?usage: pg-restore.sh DATABASE_URL BACKUP_FILE}
dump=${2:?usage: pg-restore.sh DATABASE_URL BACKUP_FILE}
url=${url/postgresql+asyncpg:/postgresql:}
name=${url##*/}; name=${name%%\?*}
server=${url%/*}
if ! psql -XAtq -d "$url" -c "SELECT 1" >/dev/null 2>&1; then
  createdb --maintenance-db "$server/postgres" "$name"
  echo "restore: created database $name"
fi
tables=$(psql -XAtq -d "$url" -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
if [ "$tables" != 0 ]; then
  echo "error: database $name already has $tables tables; restore into an empty database" >&2
  exit 1
fi
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction -d "$url" "$dump"
revision=$(psql -XAtq -d "$url" -c "SELECT version_num FROM alembic_version")
echo "restore: $dump into $name (schema revision $revision)"
