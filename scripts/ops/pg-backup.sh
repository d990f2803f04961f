#!/usr/bin/env bash
# Back up InferLab's PostgreSQL database (keys, tenants, limits, usage, audit) to one file.
#   scripts/ops/pg-backup.sh DATABASE_URL [OUT_FILE]
# DATABASE_URL: InferLab's own (postgresql+asyncpg://...) or libpq's (postgresql://...); a password
# is best given through ~/.pgpass or PGPASSWORD rather than the URL (it would show in `ps`).
# Writes pg_dump's custom format (compressed, restorable table by table), checks that the archive
# reads back, and prints the file and the schema revision it holds. See docs/operations.md.
set -euo pipefail
url=${1:?usage: pg-backup.sh DATABASE_URL [OUT_FILE]}
url=${url/postgresql+asyncpg:/postgresql:}
out=${2:-inferlab-$(date -u +%Y%m%dT%H%M%SZ).dump}
pg_dump --format=custom --no-owner --no-privileges --file "$out" "$url"
pg_restore --list "$out" >/dev/null   # an unreadable archive fails here, not on the day it is needed
revision=$(psql -XAtq -d "$url" -c "SELECT version_num FROM alembic_version" 2>/dev/null || echo unknown)
echo "backup: $out ($(stat -c %s "$out") bytes, schema revision $revision)"
