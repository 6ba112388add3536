"""`python -m app <command>`: operator commands."""

import argparse
import asyncio
import getpass
import sys

from app import migrations
from app.auth.admins import ensure_admin
from app.config import get_settings
from app.db import create_engine, create_sessionmaker


async def _create_admin(username: str, password: str | None) -> bool:
    settings = get_settings()
    engine = create_engine(settings, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await ensure_admin(session, username=username, password=password)
    finally:
        await engine.dispose()


def cmd_create_admin(args: argparse.Namespace) -> int:
    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("Password for the admin: ")
    if password is not None and len(password) < get_settings().PASSWORD_MIN_LENGTH:
        print(f"password must be at least {get_settings().PASSWORD_MIN_LENGTH} characters")
        return 2
    try:
        created = asyncio.run(_create_admin(args.username, password))
    except ValueError as exc:
        print(exc)
        return 2
    print(f"admin {args.username!r} {'created' if created else 'updated'}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    migrations.upgrade(get_settings().database_url, args.revision)
    return 0


def cmd_run(_args: argparse.Namespace) -> int:
    from app.devstack import run

    return run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole system in the foreground (make run)")
    run.set_defaults(handler=cmd_run)

    migrate = commands.add_parser("migrate", help="alembic upgrade")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    admin = commands.add_parser("create-admin", help="create or promote an admin (idempotent)")
    admin.add_argument("--username", required=True)
    admin.add_argument("--password", help="prompted for when omitted")
    admin.set_defaults(handler=cmd_create_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
