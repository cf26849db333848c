"""The app served as production serves it: gunicorn in a subprocess on a free loopback port.

Browser journeys and concurrency attacks run against this, not Flask's development
server: some defects (a malformed status line, per-process state) exist only there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(database_url: str, instance_path: Path, workers: int = 2, **env: str):
    """Serve wsgi:app on the given (already migrated) database; yields the base URL.

    Extra keyword arguments become environment variables of the server (strings).
    """
    with gunicorn_process(database_url, instance_path, workers, **env) as (base, _):
        yield base


@contextlib.contextmanager
def gunicorn_process(database_url: str, instance_path: Path, workers: int = 2, **env: str):
    """As gunicorn(), yielding (base URL, the master process): bench/web_load.py reads its CPU."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    instance_path.mkdir(parents=True, exist_ok=True)
    server_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance_path),
        "SECRET_KEY": "live-server-secret",
        "PUBLIC_URL": base,
        "REDIS_URL": "",
        "STRIPE_SECRET_KEY": "",
        "STRIPE_WEBHOOK_SECRET": "",
        "MAIL_SERVER": "",
        "API_RATE_LIMIT": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_ADDRESS": "100000/minute",
        **env,
    }
    log_path = instance_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "2",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_log(instance_path: Path) -> str:
    """What gunicorn and the app printed, for assertion messages (tracebacks of 500s)."""
    path = instance_path / "gunicorn.log"
    return path.read_text(errors="replace") if path.exists() else ""
