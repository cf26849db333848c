"""Benchmark: log-in time for a real account, an unknown email and sign-up of a taken email.

    python bench/login_timing.py [--n 30]

Runs the app in-process on a scratch SQLite database with throttling out of the
way, posts N wrong-password log-ins for a real account and for an unknown email
(and N sign-ups of a taken and of a new email), and prints the median and 90th
percentile of each in milliseconds and the ratio unknown/real: near 1.0 means
the answer time does not tell whether an account exists.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from flask_migrate import upgrade
from werkzeug.security import generate_password_hash

from portal.app import create_app
from portal.extensions import db
from portal.models import User


def timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def show(label: str, ms: list[float]) -> float:
    ms = sorted(ms)
    median = statistics.median(ms)
    print(f"{label:32s} median {median:7.1f} ms   p90 {ms[int(len(ms) * 0.9) - 1]:7.1f} ms")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    n = parser.parse_args().n
    folder = Path(tempfile.mkdtemp())
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.db'}",
            "REDIS_URL": "",
            "MAIL_SERVER": "",
            "LOGIN_MAX_FAILURES": 10**6,
            "LOGIN_MAX_FAILURES_PER_ADDRESS": 10**6,
        }
    )
    with app.app_context():
        upgrade()
        db.session.add(User(email="real@example.com", password_hash=generate_password_hash("right password")))
        db.session.commit()
    client = app.test_client()

    def login(email):
        return lambda: client.post("/login", data={"email": email, "password": "wrong password"})

    counter = iter(range(10**6))

    def signup(email=None):
        return lambda: client.post(
            "/signup",
            data={
                "name": "x",
                "email": email or f"new{next(counter)}@example.com",
                "password": "a long password",
                "confirm": "a long password",
            },
        )

    with contextlib.redirect_stdout(io.StringIO()):  # the console mail
        login("real@example.com")()  # warm up (the dummy hash is made once)
        runs = {
            "log-in, real account": timed(login("real@example.com"), n),
            "log-in, unknown email": timed(login("nobody@example.com"), n),
            "sign-up, taken email": timed(signup("real@example.com"), n),
            "sign-up, new email": timed(signup(), n),
        }
    medians = {label: show(label, ms) for label, ms in runs.items()}
    print(f"ratio log-in unknown/real: {medians['log-in, unknown email'] / medians['log-in, real account']:.2f}")
    print(f"ratio sign-up new/taken:   {medians['sign-up, new email'] / medians['sign-up, taken email']:.2f}")


if __name__ == "__main__":
    main()
