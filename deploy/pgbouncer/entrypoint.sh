#!/bin/sh
# Write PgBouncer's auth file from the environment, then become PgBouncer (it gets SIGTERM /
# SIGINT itself: SIGINT waits for clients' transactions to finish). The apps log in as the
# runtime roles (migration 0009); POSTGRES_USER reaches only the admin console (SHOW POOLS).
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}" "${API_DB_PASSWORD:?}" "${SETTLEMENT_DB_PASSWORD:?}"
umask 077
{
    printf '"%s" "%s"\n' "$POSTGRES_USER" "$POSTGRES_PASSWORD"
    printf '"%s" "%s"\n' creditpool_api "$API_DB_PASSWORD"
    printf '"%s" "%s"\n' creditpool_settlement "$SETTLEMENT_DB_PASSWORD"
} > /var/run/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
