"""``merch-pipeline demo``: the whole pipeline on sample designs, against the sandbox.

Starts the sandbox and the service in this process, publishes sample designs for a few shops to
the broker at ``AMQP_URL``, follows the resulting events with a live progress bar and ends with a
table: design → customization → product → its object in the Luigi's Box catalogue → scopes, and the
time each took.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.cloudevents import decode_structured
from contracts.events import (
    DESIGN_APPROVED,
    DESIGN_WITHDRAWN,
    EVENT_TYPES,
    EXCHANGE,
    DesignApprovedV1,
    DesignRegion,
    PinsCreatedV1,
    ProductCreatedV1,
    ProductFailedV1,
    ProductWithdrawnV1,
    Recommendations,
)
from service.bootstrap import wire
from service.broker.codec import event_message
from service.logging import configure_logging
from service.runtime import Service
from service.samples import design_event, sample_design, withdrawal
from service.sandbox.config import SandboxConfig, ShopAccount, Tracker
from service.sandbox.server import free_port, sandbox_server
from service.secrets import redact_url
from service.settings import CONSUMERS, load_settings

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
NO_BROKER = """No RabbitMQ answers at {url} and no Docker engine is available to start one.
Get a broker, then run the demo again:
  - Debian/Ubuntu:  apt-get install rabbitmq-server && rabbitmq-server -detached
  - Docker:         docker run -d -p 5672:5672 rabbitmq:3-management
  - elsewhere:      export AMQP_URL=amqp://user:password@host:5672/vhost"""


NO_TESTCONTAINERS = """No RabbitMQ answers at {url}. A Docker engine is here, but starting a broker
in it needs testcontainers, which the image and a plain install leave out:
  - pip install 'testcontainers[rabbitmq]'   (then run the demo again), or
  - start a broker yourself and export AMQP_URL=amqp://user:password@host:5672/vhost"""


@dataclass
class Track:
    shop_id: str
    design_id: str
    published_at: float
    customization_id: str = ""
    product_id: str = ""
    scopes: list[str] = field(default_factory=list)
    revision: int = 1
    catalogue: str = ""  # the product's object in Luigi's Box: available, or hidden (dormant)
    withdrawn: str = ""  # why the product was retired (superseded, or its design withdrawn)
    upstream: str = ""  # what the shop owner did to it in Fourthwall (its webhook)
    failed: str = ""
    finished_at: float | None = None


async def _broker_answers(url: str) -> bool:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), 5)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPError):
        return False
    await connection.close()
    return True


def _docker_engine() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return (
            subprocess.run(  # noqa: S603 - a fixed argv, no shell
                [docker, "info"],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def _container_broker() -> Any:
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        yield f"amqp://guest:guest@{host}:{port}/"


def _accounts(shops: int) -> tuple[SandboxConfig, dict[str, str], str]:
    """Sandbox accounts, the service's environment, and its CONFIG_FILE text. The last shop uses
    the environment's credentials; the others have their own ``[[shops]]`` tables."""
    sandbox = SandboxConfig(heavy_calls=5, heavy_window_s=60.0)
    env_token = secrets.token_urlsafe(16)
    env_key = secrets.token_urlsafe(16)
    lines = ["[pins]", 'model = "basket"', "position = 1", 'tags = ["merch-pipeline"]', ""]
    for n in range(1, shops + 1):
        shop_id = f"demo-shop-{n}"
        if n == shops:
            sandbox.shops.append(ShopAccount(shop_id=shop_id, token=env_token))
            sandbox.trackers.append(Tracker(tracker_id="9999-0000", private_key=env_key))
            continue
        password, key = secrets.token_urlsafe(12), secrets.token_urlsafe(16)
        hook_secret = secrets.token_urlsafe(16)
        sandbox.shops.append(
            ShopAccount(
                shop_id=shop_id,
                username=f"api-{n}",
                password=password,
                fourthwall_shop_id=f"sh_demo-{n}",
                webhook_secret=hook_secret,
            )
        )
        sandbox.trackers.append(Tracker(tracker_id=f"{n:04d}-{n:04d}", private_key=key))
        lines += [
            "[[shops]]",
            f'shop_id = "{shop_id}"',
            f'fourthwall_username = "api-{n}"',
            f'fourthwall_password = "{password}"',
            f'luigisbox_tracker_id = "{n:04d}-{n:04d}"',
            f'luigisbox_private_key = "{key}"',
            'item_identity_template = "/products/{product_id}"',
            f'fourthwall_shop_id = "sh_demo-{n}"',
            f'fourthwall_webhook_secret = "{hook_secret}"',
            "",
        ]
    env = {
        "FOURTHWALL_TOKEN": env_token,
        "LUIGISBOX_TRACKER_ID": "9999-0000",
        "LUIGISBOX_PRIVATE_KEY": env_key,
    }
    return sandbox, env, "\n".join(lines)


async def _presketch(sandbox_url: str, config: SandboxConfig, run_id: str) -> str:
    """A producer that sketched its own customization: the pipeline then makes one call only."""
    account = config.shops[0]
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.post(
            "/open-api/v1.0/customizations",
            json={
                "productTemplateId": "pro_tee",
                "colors": ["Navy"],
                "regions": [{"region": "back", "imageId": f"img_{run_id}_sketch"}],
            },
            auth=(account.username or "", account.password or ""),
        )
        response.raise_for_status()
        return str(response.json()["customizationId"])


async def run_demo(shops: int = 4, per_shop: int = 2, timeout_s: float = 120.0) -> int:
    # Without a terminal (a log, CI), give the table room instead of truncating the ids.
    console = Console(width=None if sys.stdout.isatty() else 150)
    url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    with contextlib.ExitStack() as stack:
        if not await _broker_answers(url):
            if not _docker_engine():
                console.print(NO_BROKER.format(url=redact_url(url)), style="red")
                return 1
            if importlib.util.find_spec("testcontainers") is None:
                console.print(NO_TESTCONTAINERS.format(url=redact_url(url)), style="red")
                return 1
            console.print("No broker at AMQP_URL: starting RabbitMQ with testcontainers…")
            url = stack.enter_context(_container_broker())
        return await _demo(console, url, shops, per_shop, timeout_s)
    return 1  # pragma: no cover - the with-block always returns


async def _demo(console: Console, url: str, shops: int, per_shop: int, timeout_s: float) -> int:
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix="merch-pipeline-demo-"))
    sandbox_config, env, config_text = _accounts(shops)
    (workdir / "config.toml").write_text(config_text)
    sandbox_port, http_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    settings = load_settings(
        {
            **env,
            "AMQP_URL": url,
            "FOURTHWALL_API_URL": sandbox_url,
            "LUIGISBOX_API_URL": sandbox_url,
            "CONFIG_FILE": str(workdir / "config.toml"),
            "HTTP_PORT": str(http_port),
            "HTTP_HOST": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{workdir / 'ledger.sqlite3'}",
            "RETRY_DELAYS_S": "1,2,5",
            "LOG_FORMAT": "json",
            "ARTWORK_HOSTS": f"127.0.0.1:{sandbox_port}",
        }
    )
    log_path = workdir / "service.log"
    log_file = log_path.open("w")
    configure_logging("json", "info", stream=log_file)
    console.print(
        f"[bold]merch-pipeline demo[/] run {run_id}: broker {redact_url(url)}, "
        f"sandbox {sandbox_url}, admin API http://127.0.0.1:{http_port}"
    )
    sandbox = sandbox_server(sandbox_config, "127.0.0.1", sandbox_port)
    sandbox_task = asyncio.create_task(sandbox.serve())
    stop = asyncio.Event()
    wiring = await wire(settings, CONSUMERS)
    service = Service(wiring)
    service_task = asyncio.create_task(service.run(stop))
    connection = await aio_pika.connect_robust(url)
    try:
        while not (sandbox.started and service.readiness().ready):
            if service_task.done():
                service_task.result()
            await asyncio.sleep(0.05)
        sketch = await _presketch(sandbox_url, sandbox_config, run_id)
        designs = _designs(shops, per_shop, run_id, sketch, f"{sandbox_url}/_sandbox/artwork")
        tracks: dict[str, Track] = {}
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # exclusive: gone with the connection; not auto-deleted between the two rounds
        watch = await channel.declare_queue(exclusive=True)
        for key in ("product.created", "pins.created", "product.failed", "product.withdrawn"):
            await watch.bind(exchange, key)
        started = time.monotonic()
        ok = await _round(console, exchange, watch, tracks, designs, timeout_s)
        # A revision of the last shop's design: its product is promoted, the first one retired.
        revised = _revised(designs[-1])
        ok = ok and await _round(console, exchange, watch, tracks, [revised], timeout_s, 1)
        # The first shop withdraws its second design: its product is hidden and unpinned.
        ok = ok and await _withdraw(console, exchange, watch, tracks, designs[1], timeout_s)
        # The second shop's owner publishes its hidden product in Fourthwall's dashboard: the
        # webhook makes its catalogue object available, and its dormant pins show.
        hook = f"http://127.0.0.1:{http_port}/webhooks/fourthwall"
        ok = ok and await _published_upstream(sandbox_url, hook, tracks, designs[3], timeout_s)
        elapsed = time.monotonic() - started
        await _catalogue(sandbox_url, tracks)
    finally:
        stop.set()
        await service_task
        await wiring.aclose()
        sandbox.should_exit = True
        await sandbox_task
        await connection.close()
        log_file.close()
    _report(console, tracks, elapsed, log_path)
    return 0 if ok else 1


def _key(design_id: str, revision: int) -> str:
    return f"{design_id}@{revision}"


def _revised(design: DesignApprovedV1) -> DesignApprovedV1:
    product = msgspec.structs.replace(
        design.product, name=f"{design.product.name} (revised)", publish_on_create=True
    )
    return msgspec.structs.replace(
        design, revision=design.revision + 1, product=product, customization_id=None
    )


async def _round(
    console: Console,
    exchange: aio_pika.abc.AbstractExchange,
    watch: aio_pika.abc.AbstractQueue,
    tracks: dict[str, Track],
    designs: list[DesignApprovedV1],
    timeout_s: float,
    withdrawals: int = 0,
) -> bool:
    """Publish ``designs`` and follow them until each is promoted or failed (and as many
    products were withdrawn as expected)."""
    for design in designs:
        track = Track(design.shop_id, design.design_id, time.monotonic(), revision=design.revision)
        tracks[_key(design.design_id, design.revision)] = track
        await exchange.publish(
            event_message(design_event(design, "urn:merch-pipeline:demo")),
            routing_key=DESIGN_APPROVED.routing_key,
        )
    return await _follow(console, watch, tracks, timeout_s, withdrawals)


async def _withdraw(
    console: Console,
    exchange: aio_pika.abc.AbstractExchange,
    watch: aio_pika.abc.AbstractQueue,
    tracks: dict[str, Track],
    design: DesignApprovedV1,
    timeout_s: float,
) -> bool:
    """Withdraw ``design`` (a rights claim) and follow until its product is retired."""
    gone = withdrawal(design, reason="rights claim (demo)")
    await exchange.publish(
        event_message(design_event(gone, "urn:merch-pipeline:demo")),
        routing_key=DESIGN_WITHDRAWN.routing_key,
    )
    return await _follow(console, watch, tracks, timeout_s, 1)


async def _published_upstream(
    sandbox_url: str,
    hook: str,
    tracks: dict[str, Track],
    design: DesignApprovedV1,
    timeout_s: float,
) -> bool:
    """Publish ``design``'s hidden product in the sandbox's Fourthwall (which delivers the
    signed webhook) and wait until the catalogue object is available."""
    track = tracks[_key(design.design_id, design.revision)]
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        (await http.post("/_sandbox/webhook-url", json={"url": hook})).raise_for_status()
        sent = await http.post(
            f"/_sandbox/fourthwall/products/{track.product_id}", json={"access": "PUBLIC"}
        )
        if sent.status_code != 200 or sent.json().get("status") != 200:
            return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            records = (await http.get("/_sandbox/records")).json()
            for catalogue in records["content"].values():
                for item in catalogue.values():
                    fields = item["fields"]
                    if fields.get("product_id") == track.product_id and fields["availability"]:
                        track.upstream = "published"
                        return True
            await asyncio.sleep(0.05)
    return False


def _designs(
    shops: int, per_shop: int, run_id: str, sketch: str, artwork: str
) -> list[DesignApprovedV1]:
    """The sample designs; the first reuses a customization made beforehand. Every other one
    is published on creation; the others stay hidden, so their pins wait dormant until the
    product is published. The last shop has one, revised in a second round (within its 5
    heavy calls a minute). The third names its artwork by URL (on the sandbox's artwork host:
    uploaded to the shop's media library first) and is pinned on six items (one bulk call)."""
    designs = [
        sample_design(
            f"demo-shop-{s}", i, run_id, customization_id=sketch if (s, i) == (1, 0) else None
        )
        for s in range(1, shops + 1)
        for i in range(per_shop if s < shops else 1)
    ]
    if len(designs) > 2:
        hosted = designs[2]
        designs[2] = msgspec.structs.replace(
            hosted,
            regions=[
                DesignRegion(region=r.region, image_url=f"{artwork}/{run_id}-{r.region}")
                for r in hosted.regions
            ],
            recommendations=Recommendations(
                pin_on_items=[f"/p/{run_id}-bestseller-{n}" for n in range(6)], tags=["demo"]
            ),
        )
    return [
        msgspec.structs.replace(
            d, product=msgspec.structs.replace(d.product, publish_on_create=n % 2 == 0)
        )
        for n, d in enumerate(designs)
    ]


async def _follow(
    console: Console,
    watch: aio_pika.abc.AbstractQueue,
    tracks: dict[str, Track],
    timeout_s: float,
    withdrawals: int = 0,
) -> bool:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    deadline = time.monotonic() + timeout_s
    waiting = [t for t in tracks.values() if t.finished_at is None]
    with progress:
        products = progress.add_task("products created", total=len(waiting), visible=bool(waiting))
        pinned = progress.add_task("designs promoted", total=len(waiting), visible=bool(waiting))
        async with watch.iterator() as messages:
            while any(t.finished_at is None for t in waiting) or withdrawals > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    message = await asyncio.wait_for(messages.__anext__(), remaining)
                except TimeoutError:
                    return False
                await message.ack()
                event = decode_structured(message.body)
                data = msgspec.json.decode(event.data, type=EVENT_TYPES[event.type].data)
                track = _track_of(tracks, data)
                if track is None:
                    continue
                if isinstance(data, ProductCreatedV1):
                    track.customization_id = data.customization_id
                    track.product_id = data.product_id
                    progress.advance(products)
                elif isinstance(data, PinsCreatedV1):
                    track.scopes = [s.scope_id[:8] for s in data.scopes]
                    track.finished_at = time.monotonic()
                    progress.advance(pinned)
                elif isinstance(data, ProductFailedV1):
                    track.failed = f"{data.stage}: {data.code}"
                    track.finished_at = time.monotonic()
                    progress.advance(pinned)
                elif isinstance(data, ProductWithdrawnV1):
                    track.withdrawn = data.reason
                    withdrawals -= 1
    return all(not t.failed for t in tracks.values())


def _track_of(tracks: dict[str, Track], data: object) -> Track | None:
    """The track an event is about: by design and revision, or by product (pins.created names
    no revision)."""
    revision = getattr(data, "revision", None)
    if revision is not None and not isinstance(data, ProductWithdrawnV1):
        return tracks.get(_key(getattr(data, "design_id", ""), revision))
    product_id = getattr(data, "product_id", None)
    return next((t for t in tracks.values() if t.product_id == product_id), None)


async def _catalogue(sandbox_url: str, tracks: dict[str, Track]) -> None:
    """What the sandbox's Luigi's Box catalogue holds of each product."""
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        records = (await http.get("/_sandbox/records")).json()
    by_product = {
        item["fields"].get("product_id"): item
        for catalogue in records["content"].values()
        for item in catalogue.values()
    }
    for track in tracks.values():
        item = by_product.get(track.product_id)
        if item is not None:
            track.catalogue = "available" if item["fields"]["availability"] else "hidden"
        elif track.withdrawn:
            track.catalogue = "removed"


def _scopes_cell(scopes: list[str]) -> str:
    """The scopes' short ids; past two, the first and how many (the table stays readable)."""
    if len(scopes) > 2:
        return f"{scopes[0]} +{len(scopes) - 1}"
    return ", ".join(scopes) or "—"


def _report(console: Console, tracks: dict[str, Track], elapsed: float, log_path: Path) -> None:
    table = Table(title="design → customization → product → indexed → pin scopes")
    columns = (
        "shop",
        "design",
        "customization",
        "product",
        "indexed",
        "scopes",
        "retired",
        "in Fourthwall",
        "seconds",
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    for t in tracks.values():
        took = f"{t.finished_at - t.published_at:.2f}" if t.finished_at else "—"
        table.add_row(
            t.shop_id,
            "#" + t.design_id.rsplit("-", 1)[-1] + f" r{t.revision}",
            t.customization_id or "—",
            t.product_id or t.failed or "—",
            t.catalogue or "—",
            _scopes_cell(t.scopes),
            t.withdrawn or "—",
            t.upstream or "—",
            took,
        )
    console.print(table)
    done = sum(1 for t in tracks.values() if t.finished_at and not t.failed)
    rate = done / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{done}/{len(tracks)} designs became products with pin scopes in "
        f"{elapsed:.2f} s ({rate:.2f} designs/s). Service log: {log_path}"
    )
    print(
        json.dumps(
            {
                "designs": len(tracks),
                "completed": done,
                "seconds": round(elapsed, 3),
                "designs_per_s": round(rate, 3),
            }
        ),
        file=sys.stderr,
    )
