"""The console's pages and actions: server-rendered HTML over the API's own services.

Every page reads through what the HTTP API uses (``ObjectListing.page``, ``Api.describe``,
``AlarmListing``, ``StateOperations``, ``Api.evict_object``...), in the tenant the session
acts in: the key's own, or for an operator the one chosen on the page (as ``Solo-Tenant``
does for the API). Who may see which page is ROUTE_SCOPES's business (api/auth.py), checked
by the middleware against the session's key before a handler runs. Every action is a POST
form checked against the session's CSRF token (`form`), answered with a redirect back to
the page (POST-redirect-GET), whose ``notice`` names what happened from a fixed set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from solo.api.alarms import listing_filters
from solo.api.auth import Requirement, principal_of
from solo.api.bodies import read_body
from solo.api.console.session import CSRF_FIELD, ConsoleSessions, Session, anonymous, signed_in
from solo.api.errors import Forbidden, Unauthenticated
from solo.api.listing import listing_query
from solo.objects.context import wall_clock_ms
from solo.objects.coordination.gateways import open_sockets
from solo.objects.naming import Address, check_class_name
from solo.objects.state.keys import DEV_PRINCIPAL, Principal, check_tenant

if TYPE_CHECKING:
    from solo.api.app import Api

HERE = Path(__file__).parent
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
MAX_FORM_BYTES = 16 * 1024
PAGE_SIZE = 50
ALARM_ROWS = 200
HISTORY_ROWS = 50  # the latest; the count shows them all (within SOLO_RETENTION_S)
# Scripts and styles only from the console's own files; no frame may hold a page.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
NOTICES = {
    "evicting": "Asked the owner to evict the object after its current batch; the next call hydrates it afresh.",
    "not-active": "No worker holds the object: there is nothing to evict.",
    "deleted": "Deleted: the object's state is gone and its epoch raised.",
    "purged-queued": "The queued calls were failed with `purged`.",
    "purged-alarms": "The orphaned alarms were removed.",
    "tenant": "Now acting in the chosen tenant.",
}


def _when_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(value: str | dt.datetime | None) -> str:
    if value is None:
        return "—"
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates")  # autoescaped, as Starlette sets it up
    found.env.filters.update(q=lambda text: quote(str(text), safe=""), when_ms=_when_ms, when=_when, size=_size)
    return found


def headline(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """Solo's counters and gauges in a registry, and each histogram's count and sum, per label set.

    The process's own (`process_*`, `python_*`) are left to Prometheus."""
    rows = []
    for family in registry.collect():
        if not family.name.startswith("solo_"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_created", "_bucket")):
                continue
            labels = ", ".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if v != "")
            rows.append({"name": sample.name, "labels": labels, "value": sample.value, "help": family.documentation})
    return rows


class Console:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.sessions = ConsoleSessions(api.calls.secret, max_age_s=api.settings.console_session_s)
        self.templates = templates()

    # -- the session ------------------------------------------------------------------------

    @staticmethod
    def session(request: Request) -> Session:
        session: Session = request.state.console_session  # the middleware admitted it
        return session

    def tenant(self, request: Request) -> str:
        """The tenant the session acts in: the key's, or the one an operator chose."""
        principal = principal_of(request.state)
        assert principal is not None
        chosen = self.session(request).tenant
        return chosen if chosen and principal.scope == "operator" else principal.tenant

    async def form(self, request: Request, session: Session | None = None) -> dict[str, str]:
        """A POSTed form's fields, once its CSRF token is the session's; Forbidden (403) otherwise."""
        origin = request.headers.get("origin")
        # The host only: behind a proxy that ends TLS the scheme seen here may differ from the browser's.
        if origin is not None and urlsplit(origin).netloc != request.url.netloc:
            raise Forbidden("the console takes forms from its own pages only (Origin differs)")
        body = await read_body(request, MAX_FORM_BYTES)
        try:
            fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise Forbidden("the console takes URL-encoded forms from its own pages only") from None
        values = {name: found[0] for name, found in fields.items()}
        session = session or self.session(request)
        if not session.csrf_matches(values.get(CSRF_FIELD)):
            raise Forbidden("the form's CSRF token is missing or not this session's: reload the page and retry")
        return values

    def page(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        principal = principal_of(request.state)
        session: Session | None = getattr(request.state, "console_session", None)
        notice = NOTICES.get(request.query_params.get("notice", ""))
        base = {
            "principal": principal,
            "tenant": self.tenant(request) if principal is not None and session is not None else None,
            "csrf": session.csrf if session is not None else "",
            "notice": notice,
            "auth": self.api.settings.auth,
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status_code, headers=HEADERS
        )

    @staticmethod
    def back(path: str, notice: str | None = None, **query: str) -> RedirectResponse:
        params = {**query, **({"notice": notice} if notice else {})}
        return RedirectResponse(f"{path}?{urlencode(params)}" if params else path, 303)

    # -- login -----------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        session = await self.sessions.read(request) or anonymous()
        if session.signed_in:
            return self.back("/console/objects")
        return await self._login_page(request, session)

    async def _login_page(self, request: Request, session: Session, error: str | None = None, status: int = 200):
        response = self.templates.TemplateResponse(
            request,
            "login.html",
            {"csrf": session.csrf, "error": error, "auth": self.api.settings.auth, "principal": None, "notice": None},
            status_code=status,
            headers=HEADERS,
        )
        await self.sessions.write(response, session, secure=request.url.scheme == "https")
        return response

    async def login(self, request: Request) -> Response:
        session = await self.sessions.read(request)
        if session is None:  # no form of ours was shown to this browser (or it expired)
            raise Forbidden("the login form's session is missing or expired: reload /console/login and retry")
        fields = await self.form(request, session)
        try:
            principal = await self.sign_in(fields.get("key", "").strip())
        except Unauthenticated:
            return await self._login_page(request, session, "That is not a valid API key (unknown or revoked).", 401)
        except Forbidden as exc:
            return await self._login_page(request, session, str(exc.message), 403)
        response = self.back("/console/objects")
        await self.sessions.write(response, signed_in(principal.key_id), secure=request.url.scheme == "https")
        return response

    async def sign_in(self, token: str) -> Principal:
        """The principal of a pasted key, if it may use the console (admin or operator)."""
        auth = self.api.auth
        if auth.mode == "off":
            return DEV_PRINCIPAL
        try:
            return await auth.admit(token or None, Requirement("admin", "/console/login"))
        except Forbidden:
            stored = await auth.cache.check(token) if auth.cache is not None else None
            scope = stored.principal.scope if stored is not None else "?"
            raise Forbidden(
                f"This key has scope {scope!r}: the console needs an admin key (its tenant) or an operator key."
            ) from None

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        response = self.back("/console/login")
        self.sessions.clear(response)
        return response

    async def choose_tenant(self, request: Request) -> Response:
        fields = await self.form(request)
        chosen = fields.get("tenant", "").strip()
        principal = principal_of(request.state)
        assert principal is not None
        tenant = None if not chosen or chosen == principal.tenant else check_tenant(chosen)
        following = fields.get("next", "")
        response = self.back(following if following.startswith("/console/") else "/console")
        await self.sessions.write(
            response, self.session(request).with_tenant(tenant), secure=request.url.scheme == "https"
        )
        return response

    # -- pages ---------------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return self.back("/console/objects")

    async def objects(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in ("class", "prefix", "cursor") and v}
        query = listing_query({**params, "limit": str(PAGE_SIZE)})
        found, next_cursor = await self.api.listing.page(self.tenant(request), query)
        following = {k: v for k, v in params.items() if k != "cursor"}
        return self.page(
            request,
            "objects.html",
            objects=found,
            filters=params,
            next_query=urlencode({**following, "cursor": next_cursor}) if next_cursor else None,
            classes=sorted(self.api.registry.names()),
        )

    def address(self, request: Request) -> Address:
        p = request.path_params
        return self.api.calls.address(self.tenant(request), p["class_name"], p["name"])

    async def object_page(self, request: Request) -> Response:
        address = self.address(request)
        info = await self.api.describe(address, principal_of(request.state))
        history = await asyncio.to_thread(self.api.catalog.history, address.object_id)
        sockets = await open_sockets(self.api.redis, self.api.keys, address.object_id)
        return self.page(
            request,
            "object.html",
            obj=info,
            history=list(reversed(history))[:HISTORY_ROWS],
            activations=len(history),
            sockets=sockets,
            path=f"/console/objects/{quote(address.class_name, safe='')}/{quote(address.name, safe='')}",
        )

    async def export(self, request: Request) -> Response:
        return await self.api.operations.export_response(self.address(request))

    async def evict(self, request: Request) -> Response:
        await self.form(request)
        address = self.address(request)
        evicting = await self.api.evict_object(address)
        return self.back(request.url.path.rsplit("/", 1)[0], "evicting" if evicting else "not-active")

    async def purge_queued(self, request: Request) -> Response:
        await self.form(request)
        await self.api.purge_queued(self.address(request))
        return self.back(request.url.path.rsplit("/", 1)[0], "purged-queued")

    async def delete(self, request: Request) -> Response:
        fields = await self.form(request)
        address = self.address(request)
        if fields.get("confirm") != address.name:
            raise Forbidden("type the object's name into the confirmation field to delete it")
        await self.api.operations.delete_object(address)
        return self.back("/console/objects", "deleted")

    async def alarms(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in ("class", "state") and v}
        tenant = self.tenant(request)
        rows = await self.api.alarms.of_tenant(tenant, listing_filters({**params, "limit": str(ALARM_ROWS)}))
        orphaned = await self.api.alarms.of_tenant(tenant, {"state": "orphaned", "limit": 10_000})
        by_class: dict[str, int] = {}
        for row in orphaned:
            by_class[row["object"]["class"]] = by_class.get(row["object"]["class"], 0) + 1
        now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        return self.page(
            request,
            "alarms.html",
            alarms=rows,
            filters=params,
            orphaned=sorted(by_class.items()),
            states=("pending", "retrying", "failed", "orphaned"),
            now_ms=now_ms,
        )

    async def purge_alarms(self, request: Request) -> Response:
        fields = await self.form(request)
        await self.api.alarms.purge_orphaned(self.tenant(request), check_class_name(fields.get("class", "")))
        return self.back("/console/alarms", "purged-alarms")

    async def workers(self, request: Request) -> Response:
        records = sorted(await self.api.workers.live(), key=lambda r: r.id)
        return self.page(request, "workers.html", workers=records, now_ms=wall_clock_ms())

    async def metrics(self, request: Request) -> Response:
        tenant = self.tenant(request)
        workers = await self.api.workers.live()
        fleet = {
            "active objects (held by live workers)": sum(w.objects for w in workers),
            "objects with calls queued (or an activation on its way)": await self.api.leases.live_count(),
            "live workers": len(workers),
            **{f"alarms {state} (tenant {tenant})": n for state, n in (await self.api.alarms.counts(tenant)).items()},
        }
        return self.page(request, "metrics.html", fleet=fleet, rows=headline(self.api.metrics.registry))

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in STATIC_FILES:  # a fixed set: nothing from the path becomes a path
            raise HTTPException(404)
        return FileResponse(HERE / "static" / name, media_type=STATIC_FILES[name])

    def routes(self) -> list[BaseRoute]:
        obj = "/console/objects/{class_name}/{name}"
        return [
            Route("/console/login", self.login_form, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", self.logout, methods=["POST"]),
            Route("/console/tenant", self.choose_tenant, methods=["POST"]),
            Route("/console/static/{file}", self.static, methods=["GET"]),
            Route("/console", self.home, methods=["GET"]),
            Route("/console/objects", self.objects, methods=["GET"]),
            Route(f"{obj}/export", self.export, methods=["GET"]),
            Route(f"{obj}/evict", self.evict, methods=["POST"]),
            Route(f"{obj}/delete", self.delete, methods=["POST"]),
            Route(f"{obj}/purge-queued", self.purge_queued, methods=["POST"]),
            Route(obj, self.object_page, methods=["GET"]),
            Route("/console/alarms", self.alarms, methods=["GET"]),
            Route("/console/alarms/purge", self.purge_alarms, methods=["POST"]),
            Route("/console/workers", self.workers, methods=["GET"]),
            Route("/console/metrics", self.metrics, methods=["GET"]),
        ]
