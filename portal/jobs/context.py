"""The app that jobs run with in this process.

Whoever starts the work hands it in with use_app(): worker.py, the embedded mode,
tests and benchmarks. The jobs never build an app themselves, so the app's modules
(the console enqueues jobs) and the jobs import each other one way only.
"""

from __future__ import annotations

import os

from flask import Flask

from ..extensions import db

_app: Flask | None = None
_app_pid: int | None = None


def use_app(app: Flask | None) -> None:
    """Run this process's jobs with `app` (None forgets it)."""
    global _app, _app_pid
    _app, _app_pid = app, os.getpid()


def app() -> Flask:
    """The app handed in by use_app(). A forked work horse inherits the
    parent's app but must not share its pooled database connections, so it
    drops the pool (without closing the parent's sockets) and opens its own."""
    global _app_pid
    if _app is None:
        raise RuntimeError(
            "No app for jobs in this process: call portal.jobs.context.use_app(app) "
            "first (worker.py and the embedded mode do)."
        )
    if _app_pid != os.getpid():
        with _app.app_context():
            db.engine.dispose(close=False)
        _app_pid = os.getpid()
    return _app
