"""A throw-away PostgreSQL cluster for the test session (started by the `pg` fixture in conftest.py).

Finds `initdb`/`pg_ctl` on PATH or in /usr/lib/postgresql/*/bin, creates a cluster in a temp dir,
listens on 127.0.0.1 on a free port (no Unix socket outside the temp dir), trust auth for the
`postgres` role, durability off (it is thrown away). PostgreSQL refuses to run as root, so as root
the cluster belongs to the `postgres` system user and every server command runs through
`runuser -u postgres --`. Each test gets a fresh database from `create_database()`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"


class PostgresUnavailable(RuntimeError):
    """Why the tests that need PostgreSQL skip."""


def find_bindir() -> Path:
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(os.path.realpath(shutil.which("pg_ctl"))).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")], reverse=True)
    if versions:
        return Path(versions[0]).parent
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
                              "`apt-get install postgresql` (what .ci/run does) to run these tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="syl-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no `postgres` system user to own the cluster") \
                    from None
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []
            if not self._as:
                raise PostgresUnavailable("running as root and `runuser` is missing")

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{Path(cmd[0]).name} failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-600:]}")
        return done

    def start(self) -> PostgresCluster:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        options = f"-h {self.host} -p {self.port} -k {self.base} {SERVER_OPTIONS}"
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                      "-l", str(self.base / "server.log"), "-w", "-t", "60", "start")
        except PostgresUnavailable as exc:
            log = (self.base / "server.log")
            tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\n{tail}") from None
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60, cwd=self.base)
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, prefix: str = "t") -> PgDatabase:
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self._run(str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name)
        return PgDatabase(self, name)


class PgDatabase:
    def __init__(self, cluster: PostgresCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name

    @property
    def url(self) -> str:
        """SQLAlchemy async URL (what DATABASE_URL takes)."""
        return f"postgresql+asyncpg://{self.cluster.user}@{self.cluster.host}:{self.cluster.port}/{self.name}"

    @property
    def dsn(self) -> str:
        """Plain libpq/asyncpg DSN."""
        return f"postgresql://{self.cluster.user}@{self.cluster.host}:{self.cluster.port}/{self.name}"

    async def fetch(self, sql: str, *args) -> list[tuple]:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()
