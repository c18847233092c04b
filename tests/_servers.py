"""Real servers for tests, on loopback: PostgreSQL clusters, MLflow servers and any HTTP server subprocess.

- ``free_port()``: a free TCP port on 127.0.0.1.
- ``spawn(cmd, log, env)`` / ``stop_process(proc)`` / ``log_tail(proc)``: a server subprocess in its own process
  group with stdout and stderr in a log file; stopping ends the whole group (servers that fork workers, such
  as uvicorn under ``mlflow server`` or ``mlflow models serve``, leave nothing behind).
- ``wait_for_http(url, timeout, proc)``: until ``url`` answers 200; fails with the log tail of ``proc`` when it
  exits first or the time runs out.
- ``start_postgres(tmp)``: a throw-away PostgreSQL cluster (``initdb`` + ``pg_ctl`` of the Debian package
  ``postgresql``) on a free loopback port with trust authentication and a database ``mlflow``. PostgreSQL
  refuses to run as root: under root (CI) the cluster runs as the ``postgres`` system user (else ``nobody``)
  in a folder of its own under /tmp, since pytest's root-owned temporary folders are closed to other users.
- ``start_mlflow_server(backend_uri, artifacts, port)``: ``mlflow server`` with proxied artifacts.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PostgresServer", "free_port", "log_tail", "spawn", "start_mlflow_server", "start_postgres",
           "stop_process", "wait_for_http"]

# Log file of each process started by spawn(), by pid (for log_tail).
_LOGS: dict[int, Path] = {}
# No usage reporting from MLflow processes started by tests.
_QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
INSTALL_HINT = "install the PostgreSQL server with `apt-get install postgresql` (Debian/Ubuntu)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(cmd: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new process group, stdin closed, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**(os.environ if env is None else env), **_QUIET_ENV}
    # MLflow starts servers (uvicorn, gunicorn) from PATH: put this interpreter's scripts first, as an
    # activated virtual environment would (make test runs .venv/bin/python without activating it)
    full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env.get("PATH", "")])
    with log.open("ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=full_env, start_new_session=True)
    _LOGS[proc.pid] = log
    return proc


def log_tail(proc: subprocess.Popen[Any], lines: int = 40) -> str:
    """The last ``lines`` lines of the log of a process started by :func:`spawn`."""
    log = _LOGS.get(proc.pid)
    if log is None or not log.exists():
        return "(no log)"
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM the process group of ``proc`` (started by :func:`spawn`), SIGKILL it after ``timeout`` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # the group may outlive its leader (forked workers)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=timeout)


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Return once GET ``url`` answers 200; AssertionError (with the log tail of ``proc``) when ``proc``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{_name(proc)} exited with status {proc.returncode} before {url} answered; "
                                 f"log tail:\n{log_tail(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            tail = f"; log tail:\n{log_tail(proc)}" if proc is not None else ""
            raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last}){tail}")
        time.sleep(0.3)


def _name(proc: subprocess.Popen[Any]) -> str:
    args = proc.args if isinstance(proc.args, list) else [str(proc.args)]
    return " ".join(str(a) for a in args[:3])


def postgres_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in versions]
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or "
                       f"/usr/lib/postgresql/*/bin: {INSTALL_HINT}")


class PostgresServer:
    """A running cluster: ``uri`` (SQLAlchemy/libpq URL of the database ``mlflow``), ``dsn(dbname)`` for
    psycopg2, ``stop()`` (also on leaving a ``with`` block) and ``log_tail()``."""

    def __init__(self, bindir: Path, base: Path, port: int, os_user: pwd.struct_passwd | None,
                 owns_base: bool) -> None:
        self.bindir, self.base, self.port = bindir, base, port
        self.data, self.log, self.sockets = base / "data", base / "postgres.log", base / "sock"
        self.user = "postgres"  # the database superuser (initdb -U)
        self.os_user = os_user  # the system user the server runs as when the tests run as root
        self._owns_base = owns_base
        self._running = False

    @property
    def uri(self) -> str:
        # The driver is explicit: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, tiecast ships psycopg2.
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/mlflow"

    def dsn(self, dbname: str = "mlflow") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.os_user is not None:  # as root: drop to the unprivileged user in the child
            kwargs = {"user": self.os_user.pw_uid, "group": self.os_user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if self.os_user is not None:
            env["HOME"] = str(self.base)
        # Output to a file, not a pipe: the postmaster started by pg_ctl must not hold our pipe open.
        with (self.base / "pg_ctl.out").open("w+", encoding="utf-8") as out:
            proc = subprocess.run([str(self.bindir / args[0]), *args[1:]], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=self.base, env=env, timeout=timeout, text=True,
                                  check=False, **kwargs)
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed with status {proc.returncode}:\n{output}\n"
                               f"server log tail:\n{self.log_tail()}")
        return proc

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off -c shared_buffers=32MB")
        self._running = True
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options)
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE mlflow")
        finally:
            conn.close()
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; kills the postmaster if that fails. Removes a folder of its own."""
        if self._running:
            self._running = False
            try:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        if self._owns_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as "
                       f"(PostgreSQL refuses root): {INSTALL_HINT}, which creates the 'postgres' user")


def start_postgres(tmp: Path) -> PostgresServer:
    """A started cluster in ``tmp`` (as root: in a folder of its own under /tmp owned by the server's user)."""
    bindir = postgres_bin()
    os_user: pwd.struct_passwd | None = None
    owns_base = False
    if os.geteuid() == 0:
        os_user = _unprivileged_user()
        base = Path(tempfile.mkdtemp(prefix="tiecast-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        owns_base = True
        os.chown(base, os_user.pw_uid, os_user.pw_gid)
    else:
        base = Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(bindir, base, free_port(), os_user, owns_base)
    server.sockets.mkdir()
    if os_user is not None:
        os.chown(server.sockets, os_user.pw_uid, os_user.pw_gid)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise


def start_mlflow_server(backend_uri: str, artifacts: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` on 127.0.0.1:``port`` (one worker) with the tracking and registry store ``backend_uri``
    and proxied artifacts (``mlflow-artifacts:/``) stored in ``artifacts``; log beside ``artifacts``. Wait for it
    with ``wait_for_http(f"http://127.0.0.1:{port}/health", ...)`` and end it with :func:`stop_process`."""
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1", "--allowed-hosts", f"127.0.0.1:{port},localhost:{port}"]
    # No background job runner (seven huey consumers, for GenAI evaluation jobs): tiecast does not use it.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return spawn(cmd, artifacts.parent / f"mlflow-server-{port}.log", env)
