"""``merch-pipeline``: run the service, the sandbox, or the demo."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from service.build import describe
from service.settings import CONSUMERS, SettingsError, load_settings, retired_settings
from service.store.migrations import SchemaMismatch

# Exit codes an orchestrator can tell apart (argparse keeps 2 for a bad command line).
EXIT_CONFIG = 78  # sysexits' EX_CONFIG: a setting is missing or bad
EXIT_TOPOLOGY = 3  # the broker's queues were declared with other arguments
EXIT_SCHEMA = 4  # MIGRATE_ON_START=false and the ledger's schema is not this release's


def _consumer_list(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in CONSUMERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown consumer {', '.join(unknown) or '(none)'}; choose from {', '.join(CONSUMERS)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="merch-pipeline", description=__doc__)
    parser.add_argument("--version", action="version", version=describe())
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the consumers and the HTTP API")
    run.add_argument(
        "--consumers",
        type=_consumer_list,
        default=CONSUMERS,
        help=f"comma-separated, default: {','.join(CONSUMERS)}",
    )
    commands.add_parser("migrate", help="apply the ledger's schema migrations to DATABASE_URL")
    commands.add_parser(
        "backfill-content",
        help="put products pinned by an earlier version into their Luigi's Box catalogues",
    )
    commands.add_parser("asyncapi", help="print the event contract as an AsyncAPI 3.0 document")
    publish = commands.add_parser("publish", help="publish an event from a JSON file over AMQP")
    publish.add_argument("kind", choices=["design-approved", "design-withdrawn"])
    publish.add_argument("file", help="a CloudEvent envelope, or just its data, as JSON")
    sandbox = commands.add_parser("sandbox", help="run the fake Fourthwall + Luigi's Box")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8090)
    sandbox.add_argument("--config", help="JSON file with shops, trackers, limits, faults")
    demo = commands.add_parser("demo", help="run the whole pipeline on sample designs")
    demo.add_argument("--designs-per-shop", type=int, default=2)
    demo.add_argument("--shops", type=int, default=4)
    demo.add_argument("--timeout", type=float, default=120.0)
    return parser


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _settings_invalid(exc: SettingsError) -> int:
    """One line naming the key (JSON, or console on a terminal), and EX_CONFIG."""
    _configure_default_logging()
    structlog.get_logger("merch_pipeline").error("settings.invalid", key=exc.key, error=str(exc))
    return EXIT_CONFIG


def _schema_mismatch(exc: SchemaMismatch) -> int:
    _configure_default_logging()
    structlog.get_logger("merch_pipeline").error(
        "ledger.schema_mismatch", found=exc.found, known=exc.known, error=str(exc)
    )
    return EXIT_SCHEMA


def _configure_default_logging() -> None:
    """Logging as ``LOG_FORMAT``/``LOG_LEVEL`` say when they can be read, else the defaults."""
    import os

    from service.logging import configure_logging

    fmt = os.environ.get("LOG_FORMAT", "auto")
    configure_logging(fmt if fmt in ("json", "console") else "auto")


async def _run(consumers: tuple[str, ...]) -> int:
    from service.logging import configure_logging
    from service.runtime import TopologyMismatch, run_service

    try:
        settings = load_settings()
    except SettingsError as exc:
        return _settings_invalid(exc)
    configure_logging(settings.log_format, settings.log_level)
    for key, replaced_by in retired_settings().items():
        structlog.get_logger("merch_pipeline").warning(
            "settings.retired", key=key, ignored=True, replaced_by=replaced_by
        )
    stop = asyncio.Event()
    _install_stop(stop)
    try:
        await run_service(settings, consumers, stop)
    except SettingsError as exc:  # found while wiring (FAILPOINTS in a build without them)
        return _settings_invalid(exc)
    except SchemaMismatch as exc:
        return _schema_mismatch(exc)
    except TopologyMismatch as exc:
        structlog.get_logger("merch_pipeline").error(
            "broker.topology_mismatch",
            error=str(exc),
            fix="the queue was declared by another version with other arguments: delete it "
            "(after moving its messages) or use a fresh vhost; see docs/deployment.md",
        )
        print(f"merch-pipeline: the broker's queues do not match: {exc}", file=sys.stderr)
        return EXIT_TOPOLOGY
    return 0


async def _sandbox(host: str, port: int, config_path: str | None) -> int:
    from service.sandbox.config import load_config
    from service.sandbox.server import sandbox_server

    server = sandbox_server(load_config(config_path), host, port)
    print(f"sandbox listening on http://{host}:{port}", file=sys.stderr)
    await server.serve()
    return 0


async def _migrate() -> int:
    from service.store.database import open_database
    from service.store.migrations import current_version, migrate

    try:
        settings = load_settings()
    except SettingsError as exc:
        return _settings_invalid(exc)
    db = await open_database(settings.database_url)
    try:
        applied = await migrate(db)
        version = await current_version(db)
    finally:
        await db.close()
    print(f"migrations applied: {applied or 'none'}; schema version {version}")
    return 0


async def _publish(kind: str, file: str) -> int:
    from pathlib import Path

    from contracts.errors import ContractError
    from service.publish import publish_file
    from service.secrets import redact_url

    try:
        settings = load_settings()
        print(await publish_file(settings.amqp_url.reveal(), Path(file), kind))
    except SettingsError as exc:
        return _settings_invalid(exc)
    except ContractError as exc:
        print(
            f"merch-pipeline: the event is not valid ({exc.reason}): {exc.detail}", file=sys.stderr
        )
        return 2
    except FileNotFoundError:
        print(f"merch-pipeline: no such file: {file}", file=sys.stderr)
        return 2
    except OSError as exc:
        url = redact_url(load_settings().amqp_url.reveal())
        print(f"merch-pipeline: could not publish to {url}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _backfill_content() -> int:
    from functools import partial

    from service.backfill import backfill_content
    from service.bootstrap import open_ledger
    from service.upstreams.credentials import (
        identity_templates,
        luigisbox_account,
        product_url_templates,
    )
    from service.upstreams.http import new_http_client
    from service.upstreams.luigisbox import LuigisBoxClient

    try:
        settings = load_settings()
    except SettingsError as exc:
        return _settings_invalid(exc)
    try:
        db, ledger = await open_ledger(settings)
    except SchemaMismatch as exc:
        return _schema_mismatch(exc)
    http = new_http_client(settings.luigisbox_api_url, settings.http_timeout_s)
    identities, urls = identity_templates(settings), product_url_templates(settings)
    try:
        done = await backfill_content(
            ledger,
            LuigisBoxClient(http, partial(luigisbox_account, settings)),
            lambda shop: identities.get(shop, settings.pins.item_identity_template),
            urls.get,
        )
    finally:
        await http.aclose()
        await db.close()
    for product_id, why in sorted(done.failed.items()):
        print(f"not indexed: {product_id}: {why}", file=sys.stderr)
    print(f"content backfill: {done.indexed} indexed, {len(done.failed)} not indexed")
    return 1 if done.failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "asyncapi":
        import json

        from service.api.asyncapi import asyncapi_document

        print(json.dumps(asyncapi_document(), indent=2))
        return 0
    if args.command == "backfill-content":
        return asyncio.run(_backfill_content())
    if args.command == "migrate":
        return asyncio.run(_migrate())
    if args.command == "publish":
        return asyncio.run(_publish(args.kind, args.file))
    if args.command == "run":
        return asyncio.run(_run(args.consumers))
    if args.command == "sandbox":
        return asyncio.run(_sandbox(args.host, args.port, args.config))
    if args.command == "demo":
        from service.demo import run_demo

        return asyncio.run(
            run_demo(shops=args.shops, per_shop=args.designs_per_shop, timeout_s=args.timeout)
        )
    return 2
