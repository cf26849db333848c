"""Benchmark: webhook fan-out of N events to 3 endpoints, sent by 1 and by 2 workers.

    python -m bench.webhooks_fanout [--n 100000] [--endpoints 3]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

A fast receiver (asyncio, keep-alive, answers 204) listens on 127.0.0.1 in a process
of its own. Each variant starts from a fresh schema holding N undispatched events
(customer.created) and the endpoints, all subscribed; then W worker processes run the
job's loop (portal.webhooks.sender.deliver_due: fan-out, sign, post, log each attempt)
until every delivery has succeeded. Prints seconds, events/s, deliveries/s, and the
2-worker run's speed-up over the 1-worker run (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import time
import uuid

import sqlalchemy as sa
from flask_migrate import upgrade

from portal.app import create_app
from portal.billing import webhooks
from portal.extensions import db
from portal.models import DLV_SUCCEEDED, WebhookDelivery, utcnow
from portal.webhooks.sender import Sender, deliver_due

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --- the receiver ---


async def _serve(port: int, ready) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    ready.set()
    async with server:
        await server.serve_forever()


def _receiver(port: int, ready) -> None:
    asyncio.run(_serve(port, ready))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the database ---


def _app(url: str):
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "REDIS_URL": "",
            "WEBHOOKS_ALLOW_PRIVATE_URLS": True,
            "TESTING": True,
        }
    )


def fresh_schema(base_url: str) -> tuple[str, str]:
    schema = f"bench_wh_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base_url: str, schema: str) -> None:
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def seed(url: str, n: int, endpoints: int, receiver_url: str) -> None:
    app = _app(url)
    with app.app_context():
        upgrade()
        now = utcnow()
        for _ in range(endpoints):
            webhooks.create_endpoint(db.session, receiver_url, ["customer.created"], "bench", now, actor_id=None)
        db.session.execute(
            sa.text(
                "INSERT INTO outbound_events (type, data, created_at) "
                "SELECT 'customer.created', "
                "json_build_object('id', g, 'email', 'customer' || g || '@example.com', 'name', '')::text, now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": n},
        )
        db.session.commit()
        db.engine.dispose()


def _worker(url: str, ready, go) -> None:
    app = _app(url)  # built before the clock starts: the run times the work, not the start-up
    with app.app_context():
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        ready.set()
        go.wait()
        deliver_due(db.session, Sender(timeout=5, allow_private=True), utcnow, db.session.commit)
        db.engine.dispose()


def run(base_url: str, n: int, endpoints: int, workers: int, receiver_url: str) -> float:
    url, schema = fresh_schema(base_url)
    try:
        seed(url, n, endpoints, receiver_url)
        ctx = multiprocessing.get_context("spawn")
        go = ctx.Event()
        ready = [ctx.Event() for _ in range(workers)]
        procs = [ctx.Process(target=_worker, args=(url, r, go)) for r in ready]
        for p in procs:
            p.start()
        for r in ready:
            r.wait(120)
        t0 = time.perf_counter()
        go.set()
        for p in procs:
            p.join()
        seconds = time.perf_counter() - t0
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            done = conn.scalar(
                sa.select(sa.func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == DLV_SUCCEEDED)
            )
        engine.dispose()
        assert done == n * endpoints, f"{done} deliveries succeeded, expected {n * endpoints}"
    finally:
        drop_schema(base_url, schema)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or PG_URL)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("--database-url must be PostgreSQL (workers share the database)")
    port = free_port()
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(target=_receiver, args=(port, ready), daemon=True)
    receiver.start()
    ready.wait(10)
    receiver_url = f"http://127.0.0.1:{port}/hooks"
    try:
        results = {w: run(args.database_url, args.n, args.endpoints, w, receiver_url) for w in (1, 2)}
    finally:
        receiver.terminate()
    deliveries = args.n * args.endpoints
    print(
        f"webhook fan-out: postgresql, N={args.n:,} events x {args.endpoints} endpoints "
        f"= {deliveries:,} deliveries, cores={os.cpu_count()}"
    )
    for w, seconds in results.items():
        print(
            f"  {w} worker{'s' if w > 1 else ' '}  {seconds:8.2f} s  {args.n / seconds:>9,.0f} events/s  "
            f"{deliveries / seconds:>9,.0f} deliveries/s"
        )
    print(f"  2 workers / 1 worker speed-up: x{results[1] / results[2]:.2f}")


if __name__ == "__main__":
    main()
