#!/bin/sh
# One image, every Creditpool process; the first argument picks the role:
#   api          uvicorn app.main:app on :8000 (the default)
#   settlement   uvicorn app.settlement.main:app on :9000
#   worker       arq workers.settings.WorkerSettings
#   migrate      python -m app migrate: alembic upgrade head as the owner (MIGRATION_DATABASE_URL,
#                else DATABASE_URL) against PostgreSQL, not PgBouncer, then LOGIN and a password
#                for each runtime role whose API_DB_PASSWORD / SETTLEMENT_DB_PASSWORD is set
#   anything else runs as given, e.g. `python -m app audit` or `python -m app worker-alive`
# Arguments after the role go to uvicorn / arq / the migration (the last --host/--port wins).
#
# SIGTERM: uvicorn stops accepting, finishes in-flight requests for up to GRACEFUL_S seconds,
# then runs the app's shutdown (flushes the request log, closes pools); the worker stops taking
# jobs and finishes running ones (WorkerSettings.job_completion_wait). Orchestrators must allow
# more than that before SIGKILL (k8s terminationGracePeriodSeconds, compose stop_grace_period).
# `exec` replaces this shell, so the server is PID 1 and receives the signal itself.
# WEB_CONCURRENCY (uvicorn's own variable) sets uvicorn's worker processes per container (1).
set -eu

GRACEFUL_S=20
role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
    api) app=app.main:app port=8000 ;;
    settlement) app=app.settlement.main:app port=9000 ;;
    worker) exec arq workers.settings.WorkerSettings "$@" ;;
    migrate) exec python -m app migrate "$@" ;;
    *) exec "$role" "$@" ;;
esac
exec uvicorn "$app" --host 0.0.0.0 --port "$port" --no-server-header \
    --timeout-graceful-shutdown "$GRACEFUL_S" "$@"
