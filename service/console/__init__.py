"""The operator console at ``/admin/ui/``: failures grouped by cause and fixed in bulk, designs,
dead letters, shops and consumers, in the browser, served by the service itself (Litestar
templates, one vendored script, nothing from another host). On only with ADMIN_TOKEN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.template.config import TemplateConfig

from consumers.ports import LedgerUnavailable
from service.console import actions, pages
from service.console.parts import ConsoleParts
from service.console.security import PREFIX, Forbidden, LoginNeeded, secured
from service.errors import ActionError

HERE = Path(__file__).parent
SCRIPT = (HERE / "static" / "console.js").read_bytes()
STYLE = (HERE / "static" / "console.css").read_bytes()


def templates() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template engine: Jinja, autoescaping every value."""
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


@get("/static/console.js", name="console-script", include_in_schema=False)
async def script() -> Response[bytes]:
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8")


@get("/static/console.css", name="console-style", include_in_schema=False)
async def style() -> Response[bytes]:
    return Response(STYLE, media_type="text/css; charset=utf-8")


def _to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return secured(Redirect(f"{PREFIX}/login", status_code=303))


def _forbidden(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    body = (
        "<!doctype html><title>Refused</title><p>Refused: this form is not one of your session's "
        f'(no or a wrong CSRF token). <a href="{PREFIX}/">Back to the console</a>.</p>'
    )
    return secured(Response(body, status_code=403, media_type="text/html; charset=utf-8"))


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ActionError)
    page = pages.render("result.html", request, session=None, title="Refused", error=exc.detail)
    page.status_code = exc.status
    return secured(page)


def _ledger_away(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    page = pages.render(
        "result.html",
        request,
        session=None,
        title="The ledger is away",
        error=f"The service's database is not answering ({exc}); try again shortly.",
    )
    page.status_code = 503
    page.headers["Retry-After"] = "5"
    return secured(page)


def console_router(parts: ConsoleParts) -> Router:
    def provide() -> ConsoleParts:
        return parts

    return Router(
        path=PREFIX,
        route_handlers=[
            script,
            style,
            pages.login_form,
            pages.home,
            pages.failures_page,
            pages.preview_page,
            pages.designs_page,
            pages.design_page,
            pages.dead_letters_page,
            pages.shops_page,
            pages.consumers_page,
            actions.login,
            actions.logout,
            actions.retry_group,
            actions.retry_design,
            actions.reconcile,
            actions.dead_letter,
            actions.switch_consumer,
        ],
        dependencies={"console": Provide(provide, sync_to_thread=False, use_cache=True)},
        exception_handlers={
            LoginNeeded: _to_login,
            Forbidden: _forbidden,
            ActionError: _refused,
            LedgerUnavailable: _ledger_away,
        },
        after_request=secured,
        include_in_schema=False,
    )
