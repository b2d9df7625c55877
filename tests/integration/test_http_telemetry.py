"""A scrape of the running service shows the process's and the runtime's metrics, the build,
and each HTTP route's requests and latency labelled by its template, never by a raw path."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import build
from service.settings import load_settings
from service.testing.inprocess import running_service

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-the-scrape-0123"


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def test_a_scrape_shows_process_build_and_per_route_http_metrics(
    service_env: dict[str, str],
) -> None:
    settings = load_settings({**service_env, "ADMIN_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        running_service(settings),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http,
    ):
        for design in ("shop-1:design-a:1", "shop-1:design-b:1"):  # two paths, one route
            assert (await http.get(f"/admin/designs/{design}", headers=auth)).status_code == 404
        assert (await http.get("/admin/designs", headers=auth)).status_code == 200
        assert (await http.get("/admin/designs")).status_code == 401
        assert (await http.get("/health/live")).status_code == 200
        text = (await http.get("/metrics")).text
    samples = _samples(text)
    assert samples["process_resident_memory_bytes"][0][1] > 0
    assert samples["process_cpu_seconds_total"]
    (python,) = samples["python_info"]
    assert python[0]["implementation"] == "CPython"
    (built,) = samples["merch_pipeline_build_info"]
    assert built == ({"version": build.version(), "revision": build.revision()}, 1.0)
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for labels, value in samples["merch_http_requests_total"]
    }
    (one_design,) = [route for (_, route, _) in requests if route.startswith("/admin/designs/")]
    assert re.fullmatch(r"/admin/designs/\{\w+\}", one_design)  # the template
    assert requests[("GET", one_design, "404")] == 2
    assert requests[("GET", "/admin/designs", "200")] == 1
    assert requests[("GET", "/admin/designs", "401")] == 1
    assert requests[("GET", "/health/live", "200")] == 1
    assert not [route for (_, route, _) in requests if "design-a" in route]
    counts = {
        (labels["method"], labels["route"]): value
        for labels, value in samples["merch_http_request_seconds_count"]
    }
    assert counts[("GET", one_design)] == 2
