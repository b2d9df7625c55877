"""The README's first command, ``merch-pipeline demo``, as a process: every design becomes a
product in the catalogue with its pins, the revised one retires its first product, and a
withdrawn one is retired, and a product published in Fourthwall becomes available."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from service.testing.processes import CLI

pytestmark = pytest.mark.e2e


async def test_the_demo_shows_each_step_and_a_revision_superseding(amqp_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "demo",
        env={**os.environ, "AMQP_URL": amqp_url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, text
    summary = json.loads(text.strip().splitlines()[-1])
    assert summary["designs"] == summary["completed"] == 8
    rows = [line for line in text.splitlines() if "demo-shop-" in line]
    assert len(rows) == 8
    assert sum("available" in r for r in rows) >= 3 and sum("hidden" in r for r in rows) >= 1
    superseded = [r for r in rows if "superseded" in r]
    assert len(superseded) == 1 and "removed" in superseded[0] and "r1" in superseded[0]
    assert any("r2" in r and "available" in r for r in rows)
    withdrawn = [r for r in rows if "withdrawn" in r]  # the first shop's second design
    assert len(withdrawn) == 1 and "removed" in withdrawn[0] and "demo-shop-1" in withdrawn[0]
    # the second shop's owner published its hidden product in Fourthwall: the webhook made it
    # available in Luigi's Box
    published = [r for r in rows if "published" in r]
    assert len(published) == 1 and "available" in published[0] and "demo-shop-2" in published[0]
