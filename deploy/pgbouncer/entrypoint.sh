#!/bin/sh
# Write PgBouncer's auth file from the environment, then become PgBouncer (it gets SIGTERM /
# SIGINT itself: SIGINT waits for clients' transactions to finish).
set -eu
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"
umask 077
printf '"%s" "%s"\n' "$POSTGRES_USER" "$POSTGRES_PASSWORD" > /var/run/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
