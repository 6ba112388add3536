"""`python -m app <command>`: operator commands."""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import migrations
from app.audit.service import run_audit
from app.auth.admins import AdminRefused, create_admin, promote_to_admin
from app.config import DEV_ENV_FILE, DEV_ENV_FLAG, get_settings
from app.db import create_engine, create_sessionmaker
from app.money import format_amount, parse_amount
from app.redis import create_redis
from app.withdrawals.money_path import create_money_path
from app.withdrawals.reconcile import ReconcileReport, reconcile
from app.withdrawals.settlement_client import create_http_client

T = TypeVar("T")


def _run_with_sessionmaker(
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]], *, as_owner: bool = False
) -> T:
    """Run `work` with sessions on an engine of its own, disposed afterwards: as this
    process's runtime role, or as the owner (MIGRATION_DATABASE_URL)."""

    async def main() -> T:
        settings = get_settings()
        if as_owner:
            settings = settings.model_copy(update={"DATABASE_URL": settings.migration_database_url})
        engine = create_engine(settings, pool_size=2)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _run_with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` with one session on an engine of its own."""

    async def with_session(sessionmaker: async_sessionmaker[AsyncSession]) -> T:
        async with sessionmaker() as session:
            return await work(session)

    return _run_with_sessionmaker(with_session)


async def _create_admin(
    session: AsyncSession, username: str, password: str | None, *, promote: bool
) -> None:
    async with session.begin():
        if promote:
            await promote_to_admin(session, username=username, password=password)
        elif password is None:
            raise AdminRefused("a password is required (--password, or type it at the prompt)")
        else:
            await create_admin(session, username=username, password=password)


def cmd_create_admin(args: argparse.Namespace) -> int:
    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("Password for the admin: ")
    minimum = get_settings().password_min_length
    if password is not None and len(password) < minimum:
        print(f"password must be at least {minimum} characters")
        return 2
    try:
        _run_with_session(lambda s: _create_admin(s, args.username, password, promote=args.promote))
    except AdminRefused as exc:
        print(exc)
        return 2
    print(f"admin {args.username!r} {'promoted' if args.promote else 'created'}")
    return 0


def _refuse_outside_dev(command: str) -> int | None:
    """Exit code 2 with a reason when not in dev/test mode, where load-test tools belong."""
    environment = get_settings().ENVIRONMENT
    if environment in ("dev", "test"):
        return None
    print(
        f"refusing to run {command} with ENVIRONMENT={environment}: it is a load-test tool "
        "for dev/test databases only (set ENVIRONMENT=dev or test)",
        file=sys.stderr,
    )
    return 2


def cmd_audit(_args: argparse.Namespace) -> int:
    report = _run_with_session(run_audit)
    print(report.render())
    return 0 if report.ok else 1


async def _reconcile(older_than_s: int) -> ReconcileReport:
    settings = get_settings()
    engine = create_engine(settings, pool_size=2)
    money = create_money_path(engine, settings)
    try:
        async with create_http_client(settings) as http:
            return await reconcile(
                money, http=http, settings=settings, older_than=timedelta(seconds=older_than_s)
            )
    finally:
        await money.aclose()
        await engine.dispose()


def cmd_reconcile(args: argparse.Namespace) -> int:
    older_than = get_settings().RECONCILE_AFTER_S if args.older_than is None else args.older_than
    report = asyncio.run(_reconcile(older_than))
    outcomes = ", ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items())) or "nothing to do"
    print(f"examined={report.examined} {outcomes}")
    return 0


def cmd_worker_alive(_args: argparse.Namespace) -> int:
    from app.operations.reconciler import is_alive

    return 0 if is_alive(get_settings()) else 1


def cmd_seed(args: argparse.Namespace) -> int:
    from app.dev.loadkit.seed import reset, seed

    if args.reset and (refused := _refuse_outside_dev("seed --reset")) is not None:
        return refused
    try:
        credit = parse_amount(args.credit)
    except ValueError as exc:
        print(f"--credit: {exc}")
        return 2
    if args.reset:
        # A new book: the runtime role may not empty the ledger, the owner does.
        _run_with_sessionmaker(reset, as_owner=True)
    result = _run_with_sessionmaker(
        lambda sessionmaker: seed(
            sessionmaker, merchants=args.merchants, credit=credit, password=args.password
        )
    )
    print(
        f"merchants={result.merchants}, credit/merchant={format_amount(result.credit)}, "
        f"pool_available={format_amount(result.pool_available)}"
    )
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from app.dev.loadkit.tokens import push_tokens

    if (refused := _refuse_outside_dev("tokens")) is not None:
        return refused
    settings = get_settings()

    async def work(session: AsyncSession) -> int:
        redis = create_redis(settings)
        try:
            return await push_tokens(session, redis, settings, count=args.count, key=args.redis_key)
        finally:
            await redis.aclose()

    pushed = _run_with_session(work)
    print(f"pushed {pushed} access tokens to Redis list {args.redis_key!r}")
    return 0 if pushed == args.count else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = get_settings()
    migrations.upgrade(settings.migration_database_url, args.revision)
    if passwords := settings.runtime_role_passwords:
        migrations.enable_logins(settings.migration_database_url, passwords)
    return 0


def cmd_run(_args: argparse.Namespace) -> int:
    from app.dev.devstack import run

    return run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole system in the foreground (make run)")
    run.set_defaults(handler=cmd_run)

    migrate = commands.add_parser("migrate", help="alembic upgrade")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    admin = commands.add_parser("create-admin", help="create an admin (never an existing user)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--password", help="prompted for when omitted")
    admin.add_argument(
        "--promote",
        action="store_true",
        help="make an existing user without a merchant account an admin instead",
    )
    admin.set_defaults(handler=cmd_create_admin)

    audit = commands.add_parser(
        "audit", help="check the money invariants (exit 1 on any violation)"
    )
    audit.set_defaults(handler=cmd_audit)

    reconcile_cmd = commands.add_parser(
        "reconcile", help="finish PROCESSING withdrawals by asking settlement"
    )
    reconcile_cmd.add_argument(
        "--older-than", type=int, help="seconds (default RECONCILE_AFTER_S)", metavar="S"
    )
    reconcile_cmd.set_defaults(handler=cmd_reconcile)

    alive = commands.add_parser(
        "worker-alive", help="liveness probe: exit 0 while the worker's timer beats"
    )
    alive.set_defaults(handler=cmd_worker_alive)

    seed_cmd = commands.add_parser("seed", help="approved load-test merchants m1..mN")
    seed_cmd.add_argument("--merchants", type=int, default=1000)
    seed_cmd.add_argument("--credit", default="1000.00", help="credit limit per merchant")
    seed_cmd.add_argument("--password", required=True, help="shared password of m1..mN")
    seed_cmd.add_argument("--reset", action="store_true", help="clear merchants and money first")
    seed_cmd.set_defaults(handler=cmd_seed)

    tokens_cmd = commands.add_parser("tokens", help="push access tokens of m1..mN to Redis")
    tokens_cmd.add_argument("--count", type=int, default=1000)
    tokens_cmd.add_argument("--redis-key", default="locust:tokens")
    tokens_cmd.set_defaults(handler=cmd_tokens)
    return parser


def _use_running_dev_stack(command: str) -> None:
    """Commands in a checkout where `make run` runs reach its stack (DEV_ENV_FILE), saying so."""
    if command == "run" or not os.path.isfile(DEV_ENV_FILE):
        return
    os.environ[DEV_ENV_FLAG] = "1"
    get_settings.cache_clear()
    print(f"using {DEV_ENV_FILE} (written by a running `make run`)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _use_running_dev_stack(args.command)
    return int(args.handler(args))
