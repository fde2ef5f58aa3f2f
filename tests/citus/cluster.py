"""A 3-node Citus cluster for the test session (the bundle in ../shared/citus, see its README).

Stands in for tests/pg.py's TestPostgres: one database (`postgres`) migrated with the
distributed layout, shared by every test of the session. Creating a database per test would
mean creating it and the extension on every node and distributing 22 tables each time, so a
"fresh database" here is the same one with every table emptied (identities kept, so ids never
repeat), except the append-only audit log, and with only the partitions of `spans` it had at
the start. DELETE rather than TRUNCATE: on nearly empty tables it is ten times faster across
8 shards x 9 tables (TRUNCATE takes every shard's lock in 2PC).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from db.engine import libpq_url
from db.citus import BY_PROJECT, BY_TRACE, REFERENCE
from db.migrate import distribute, upgrade

CITUS_SO = Path("/usr/lib/postgresql/15/lib/citus.so")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The bundle next to the checkout (../shared/citus), or where CAUSELINE_CITUS_BUNDLE says.
BUNDLE_CANDIDATES = [Path(os.environ["CAUSELINE_CITUS_BUNDLE"])] if os.environ.get("CAUSELINE_CITUS_BUNDLE") else []
BUNDLE_CANDIDATES += [Path(__file__).resolve().parents[3] / "shared" / "citus"]
SHARDS = 8  # per distributed table, 4 per worker: enough to show spreading, fewer tasks per query
# Children before parents: the foreign keys among reference tables point at earlier ones.
EMPTIED = BY_TRACE + BY_PROJECT + tuple(reversed(REFERENCE))


def bundle() -> Path | None:
    for candidate in BUNDLE_CANDIDATES:
        if (candidate / "cluster.sh").is_file():
            return candidate
    return None


def unavailable() -> str | None:
    """Why the Citus suite cannot run here, or None."""
    if bundle() is None:
        return f"no Citus bundle (looked in {', '.join(map(str, BUNDLE_CANDIDATES))})"
    if not CITUS_SO.is_file():
        return f"Citus is not installed into PostgreSQL 15 ({CITUS_SO} missing): run the bundle's install.sh"
    return None


def _free_base_port() -> int:
    """A port P with P, P+1 and P+2 free on loopback (coordinator and two workers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65530:
            continue
        try:
            for port in (base + 1, base + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


class CitusCluster:
    def __init__(self) -> None:
        self.script = bundle() / "cluster.sh"
        self.extra: list[Path] = []  # workers added by add_worker()
        # For working on this suite: a cluster you started yourself with cluster.sh (left running).
        self.external = os.environ.get("CAUSELINE_TEST_CITUS_URL")
        if self.external:
            self.url = self.external
            upgrade(self.url)
            distribute(self.url, SHARDS)
            self.days = self._days()
            return
        # mkdtemp is 0700: the servers run as `postgres` under root and must reach the directory.
        self.home = Path(tempfile.mkdtemp(prefix="causeline-citus-"))
        self.home.chmod(0o755)
        self.dir = self.home / "cluster"
        started = subprocess.run([str(self.script), "start", str(self.dir), str(_free_base_port())],
                                 capture_output=True, text=True, timeout=300)
        if started.returncode != 0:
            shutil.rmtree(self.home, ignore_errors=True)
            raise RuntimeError(f"cluster.sh start failed:\n{started.stderr}")
        self.url = started.stdout.strip().splitlines()[-1]
        try:
            upgrade(self.url)
            distribute(self.url, SHARDS)
            self.days = self._days()
        except BaseException:
            self.close()
            raise

    # TestPostgres's interface, for the fixtures that take `pg`.
    @property
    def server_url(self) -> str:
        return self.url

    def fresh_database(self) -> str:
        self.empty()
        return self.url

    def drop(self, url: str) -> None:
        pass  # emptied by the next fresh_database()

    def empty(self) -> None:
        # One transaction each: Citus refuses a reference table write after a parallel multi-shard one.
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")  # no deadlock with stragglers
            for table in EMPTIED:
                conn.execute(f'DELETE FROM "{table}"')
            # The days of `spans` a test made (ahead, or long ago) go too: the retention tests
            # count partitions as in a database of their own.
            for day in self._days(conn) - self.days:
                conn.execute(f'DROP TABLE "{day}"')

    def _days(self, conn: psycopg.Connection | None = None) -> set[str]:
        if conn is None:
            with psycopg.connect(libpq_url(self.url)) as own:
                return self._days(own)
        return {name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'spans'::regclass").fetchall()}

    def add_worker(self) -> int:
        """Start one more PostgreSQL with Citus (configured as cluster.sh configures its workers)
        and register it with the coordinator; returns its port. Stopped by close()."""
        if self.external:
            raise RuntimeError("not on a cluster this suite did not start")
        home = self.home / f"worker{3 + len(self.extra)}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._as_server("initdb", "-D", str(home), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--locale=C.UTF-8", "--no-sync")
        with open(home / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{self.home}'\n"
                       "shared_preload_libraries = 'citus'\nwal_level = logical\nmax_connections = 200\n"
                       "max_prepared_transactions = 200\n")
        (home / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                                          "local replication all trust\nhost replication all 127.0.0.1/32 trust\n")
        self.extra.append(home)
        self._as_server("pg_ctl", "-D", str(home), "-l", str(home.with_suffix(".log")), "-w", "-t", "120", "start")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
        return port

    def _as_server(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as cluster.sh does, as `postgres`
            shutil.chown(self.home, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=300)

    def close(self) -> None:
        if self.external:
            return
        try:
            for home in self.extra:
                subprocess.run(["runuser", "-u", "postgres", "--"] * (os.geteuid() == 0)
                               + [str(PG_BIN / "pg_ctl"), "-D", str(home), "-m", "fast", "-w", "stop"],
                               capture_output=True, timeout=120)
            subprocess.run([str(self.script), "stop", str(self.dir)], capture_output=True, timeout=120)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
