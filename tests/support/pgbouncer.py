"""Debian's PgBouncer in front of the test PostgreSQL, configured from the shipped
deploy/pgbouncer/pgbouncer.ini; only addresses, files, auth and the pool size are replaced."""

import configparser
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import PGBOUNCER_PORT
from app.database_roles import RUNTIME_ROLES
from app.dev.embedded import EmbeddedPostgres
from app.dev.embedded.postgres import BIN_DIR
from app.dev.embedded.process import wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_INI = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
MISSING = (
    "PgBouncer is not installed. `make test` (and so .ci/run) installs Debian's pgbouncer "
    "with apt-get when run as root (.ci/system-deps); otherwise: apt-get install pgbouncer"
)
# PgBouncer refuses to run as root, like PostgreSQL.
UNPRIVILEGED_USER = "nobody"


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        raise RuntimeError(MISSING)
    return found


@dataclass(frozen=True)
class PgBouncer:
    host: str
    port: int
    log_file: Path

    def show(self, what: str) -> list[dict[str, str]]:
        """Rows of the admin console's SHOW <what> (simple query protocol, hence psql)."""
        psql = [str(BIN_DIR / "psql"), "-h", self.host, "-p", str(self.port), "-U", "postgres"]
        out = subprocess.run(
            [*psql, "-d", "pgbouncer", "-AF", "\t", "-c", f"SHOW {what}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.splitlines()
        header, rows = out[0].split("\t"), out[1:-1]  # the last line is "(N rows)"
        return [dict(zip(header, row.split("\t"), strict=True)) for row in rows]


def loopback_address_with_free_port(port: int) -> str:
    """An address in 127.0.0.0/8 where `port` is free: tests listen on PgBouncer's own port
    without colliding with one that a developer runs on 127.0.0.1."""
    for last in range(2 + os.getpid() % 200, 255):
        host = f"127.0.0.{last}"
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return host
    raise RuntimeError(f"port {port} is taken on every loopback address")


def _config(
    postgres: EmbeddedPostgres, directory: Path, host: str, port: int, pool_size: int
) -> str:
    config = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    config.optionxform = str  # type: ignore[assignment,method-assign]
    config.read(SHIPPED_INI)
    database = config["databases"]["creditpool"]
    assert "host=postgres port=5432" in database, database
    config["databases"]["creditpool"] = database.replace(
        "host=postgres port=5432", f"host=127.0.0.1 port={postgres.port}"
    )
    # The test server trusts local connections; PgBouncer still wants the user listed.
    config["pgbouncer"].update(
        listen_addr=host,
        listen_port=str(port),
        auth_type="trust",
        auth_file=str(directory / "userlist.txt"),
        logfile=str(directory / "pgbouncer.log"),
        pidfile=str(directory / "pgbouncer.pid"),
        default_pool_size=str(pool_size),
        reserve_pool_size="0",
    )
    path = directory / "pgbouncer.ini"
    with path.open("w") as file:
        config.write(file)
    users = ("postgres", *RUNTIME_ROLES)
    (directory / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    return str(path)


@contextmanager
def running_pgbouncer(postgres: EmbeddedPostgres, *, pool_size: int) -> Iterator[PgBouncer]:
    """PgBouncer on port 6432 (of a free loopback address) with at most `pool_size` server
    connections to `postgres`."""
    binary = pgbouncer_binary()
    directory = Path(tempfile.mkdtemp(prefix="creditpool-pgbouncer-"))
    host, port = loopback_address_with_free_port(PGBOUNCER_PORT), PGBOUNCER_PORT
    ini = _config(postgres, directory, host, port, pool_size)
    run_as = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None
    if run_as:
        for path in (directory, *directory.iterdir()):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    process = subprocess.Popen(
        [binary, ini],
        user=run_as.pw_uid if run_as else None,
        group=run_as.pw_gid if run_as else None,
        extra_groups=[] if run_as else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bouncer = PgBouncer(host=host, port=port, log_file=directory / "pgbouncer.log")
    try:
        try:
            wait_for_port(host, port, timeout=15)
        except TimeoutError:
            log = bouncer.log_file.read_text() if bouncer.log_file.exists() else ""
            raise RuntimeError(f"pgbouncer did not start:\n{log[-2000:]}") from None
        yield bouncer
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        shutil.rmtree(directory, ignore_errors=True)
