#!/usr/bin/env bash
# Test databases and vhosts are named t_<uuid>; a test that panics before its teardown leaves
# them behind. This drops any older than ten minutes (so a concurrent run is not disturbed).
set -euo pipefail
psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -d postgres -tA -c \
  "SELECT datname FROM pg_database d WHERE datname ~ '^t_[0-9a-f]{32}$'
     AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname
                     AND a.backend_start > now() - interval '10 minutes')" |
while read -r db; do
    [ -n "$db" ] && psql -h 127.0.0.1 -U "${PGSUPERUSER:-postgres}" -d postgres -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
done
for vhost in $(curl -fsS -u guest:guest http://127.0.0.1:15672/api/vhosts 2>/dev/null | grep -o '"name":"t_[0-9a-f]\{32\}"' | cut -d'"' -f4); do
    # A vhost with open connections belongs to a running test.
    connections=$(curl -fsS -u guest:guest "http://127.0.0.1:15672/api/vhosts/$vhost/connections" | grep -c '"name"' || true)
    [ "$connections" = 0 ] && curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null || true
done
