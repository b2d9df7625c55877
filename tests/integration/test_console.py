"""The operator console over HTTP: off without ADMIN_TOKEN; login with a wrong and a right
token, the cookie's flags, the login rate limit; CSRF refusal; the Content-Security-Policy;
a hostile upstream error shown as text; a session ended on every replica by a logout or a
rotated token; the bearer-token API unaffected."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import msgspec
import pytest

from contracts.events import DesignRegion
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.sandbox.server import free_port
from service.settings import Settings, load_settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration
TOKEN = "console-admin-token-0123456789"
HOSTILE = "<script>alert(1)</script>"
UI = "/admin/ui"


def _settings(service_env: dict[str, str], **extra: str) -> Settings:
    return load_settings({**service_env, "ADMIN_TOKEN": TOKEN, **extra})


def _client(settings: Settings, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", headers=headers)


async def log_in(
    http: httpx.AsyncClient, token: str = TOKEN, operator: str = "ops-ann"
) -> httpx.Response:
    form = await http.get(f"{UI}/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    # the login form's own cookie, sent back even where it is Secure (X-Forwarded-Proto https
    # in a test over plain http)
    http.cookies.set("mp_console_login", csrf.group(1), path=UI)
    return await http.post(
        f"{UI}/login", data={"csrf": csrf.group(1), "operator": operator, "token": token}
    )


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
async def console(service_env: dict[str, str]) -> AsyncIterator[Settings]:
    settings = _settings(service_env)
    async with running_service(settings):
        yield settings


async def test_console_is_off_without_an_admin_token(settings: Settings) -> None:
    async with running_service(settings), _client(settings) as http:
        assert (await http.get(f"{UI}/login")).status_code == 404
        assert (await http.get(f"{UI}/failures")).status_code == 404


async def test_login_with_a_wrong_and_a_right_token_and_the_cookie_flags(
    console: Settings,
) -> None:
    async with _client(console) as http:
        page = await http.get(f"{UI}/failures")
        assert page.status_code in (302, 303, 307) and page.headers["location"] == f"{UI}/login"
        form = await http.get(f"{UI}/login")
        csp = form.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert 'type="password" name="token"' in form.text and 'name="operator"' in form.text
        wrong = await log_in(http, token="not-the-token")
        assert wrong.status_code == 401 and "mp_console=" not in wrong.headers.get("set-cookie", "")
        assert TOKEN not in wrong.text
        right = await log_in(http)
        assert right.status_code == 303 and right.headers["location"] == f"{UI}/failures"
        flags = right.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/admin/ui" in flags
        assert "secure" not in flags  # plain http, CONSOLE_COOKIE_SECURE unset
        shown = await http.get(f"{UI}/failures")
        assert shown.status_code == 200 and "ops-ann" in shown.text
    async with _client(console, **{"X-Forwarded-Proto": "https"}) as https:
        assert "secure" in (await log_in(https)).headers["set-cookie"].lower()


async def test_the_chart_setting_makes_the_cookie_secure(service_env: dict[str, str]) -> None:
    settings = _settings(service_env, CONSOLE_COOKIE_SECURE="true")
    async with running_service(settings), _client(settings) as http:
        assert "secure" in (await log_in(http)).headers["set-cookie"].lower()


async def test_a_form_without_its_csrf_token_is_refused(console: Settings) -> None:
    async with _client(console) as http:
        await log_in(http)
        page = await http.get(f"{UI}/consumers")
        refused = await http.post(f"{UI}/consumers/design-approved/pause", data={})
        forged = await http.post(f"{UI}/consumers/design-approved/pause", data={"csrf": "forged"})
        assert (refused.status_code, forged.status_code) == (403, 403)
        assert "operator" not in (await http.get("/health/ready")).json()["consumers"][0].get(
            "paused_for", []
        )
        done = await http.post(f"{UI}/consumers/design-approved/pause", data={"csrf": _csrf(page)})
        assert done.status_code == 303
        paused = (await http.get(f"{UI}/consumers")).text
        assert re.search(
            r'data-name="design-approved">.*?class="paused-for">operator<', paused, re.S
        )
        # an action that does not apply says why, with the status the API would answer
        missing = await http.post(f"{UI}/designs/shop-1:nope:1/retry", data={"csrf": _csrf(page)})
        assert missing.status_code == 404 and "no design" in missing.text
    # the bearer-token API takes no CSRF token and is unchanged
    async with _client(console, Authorization=f"Bearer {TOKEN}") as api:
        resumed = await api.post("/admin/consumers/design-approved/resume")
        assert resumed.status_code == 200 and resumed.json()["paused_for"] == []


async def test_failed_logins_are_limited_per_address(service_env: dict[str, str]) -> None:
    settings = _settings(service_env, CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE="3")
    async with running_service(settings), _client(settings) as http:
        for _ in range(3):
            assert (await log_in(http, token="guess")).status_code == 401
        limited = await log_in(http)  # even the right token waits now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "mp_console=" not in limited.headers.get("set-cookie", "")


async def test_a_hostile_upstream_error_is_shown_as_text(
    console: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = msgspec.structs.replace(
        sample_design("shop-2", 0, "hostile"),
        regions=[DesignRegion(region=HOSTILE, image_id="img_front_1")],
    )
    async with watching(amqp_url) as watcher, _client(console) as http:
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("product.failed", 1)
        await log_in(http)
        pages = [
            await http.get(f"{UI}/failures"),
            await http.get(f"{UI}/designs", params={"q": design.design_id}),
            await http.get(f"{UI}/designs/shop-2:{design.design_id}:1"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].text + pages[2].text
    assert "<script" not in pages[2].text.replace('<script src="/admin/ui/static/console.js"', "")
    assert "product.failed" in pages[2].text  # the event the design sent, shown as text


async def test_logout_and_a_rotated_token_end_the_session_on_every_replica(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    first = _settings(service_env)
    second = _settings(service_env, HTTP_PORT=str(free_port()))
    rotated = load_settings(
        {**service_env, "ADMIN_TOKEN": TOKEN + "-rotated", "HTTP_PORT": str(free_port())}
    )
    async with AsyncExitStack() as stack:
        for settings in (first, second, rotated):
            await stack.enter_async_context(running_service(settings))
        a = await stack.enter_async_context(_client(first))
        await log_in(a)
        session = a.cookies.get("mp_console")
        assert session
        b = await stack.enter_async_context(_client(second))
        b.cookies.set("mp_console", session, path=UI)
        assert (await b.get(f"{UI}/failures")).status_code == 200  # the same session
        c = await stack.enter_async_context(_client(rotated))
        c.cookies.set("mp_console", session, path=UI)
        assert (await c.get(f"{UI}/failures")).status_code == 303  # another token: no session
        page = await a.get(f"{UI}/failures")
        out = await a.post(f"{UI}/logout", data={"csrf": _csrf(page)})
        assert out.status_code == 303 and out.headers["location"] == f"{UI}/login"
        assert (await b.get(f"{UI}/failures")).status_code == 303  # ended there too
