"""The console's session: a cookie signed with the deployment's secret, and its CSRF token.

The cookie never holds the API key. At login the key is checked once, and the cookie then
names only the key's id (a reference the middleware verifies on every request against the
key table, so revoking the key ends the session within the key cache's life), the tenant
an operator chose, and a random CSRF token. It is signed and timed with itsdangerous
(HMAC-SHA1 over a key derived from the installation secret with its own salt), so nobody
outside the deployment can make or change one. It is HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it) and Secure on HTTPS.

Every POST form carries the session's CSRF token (``csrf``), compared in constant time:
SameSite already keeps other sites' forms out, and the token keeps them out in browsers
that do not honour it. A visitor who has not signed in yet gets an anonymous session
when the login form is shown, so the login POST is held to a token too.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

COOKIE_NAME = "solo_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf"
SALT = "solo.console.session"
DEFAULT_MAX_AGE_S = 8 * 3600  # a working day; then the operator pastes the key again


@dataclass(frozen=True)
class Session:
    """What the cookie says. `signed_in` False: a visitor at the login form (only a CSRF token)."""

    csrf: str
    signed_in: bool = False
    key_id: str | None = None  # None when signed in with SOLO_AUTH=off
    tenant: str | None = None  # the tenant an operator chose to act in; None: the key's own

    def with_tenant(self, tenant: str | None) -> Session:
        return replace(self, tenant=tenant)

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


def anonymous() -> Session:
    return Session(csrf=secrets.token_urlsafe(32))


def signed_in(key_id: str | None) -> Session:
    """A fresh session for a key that just signed in: a new CSRF token, never the visitor's."""
    return Session(csrf=secrets.token_urlsafe(32), signed_in=True, key_id=key_id)


class ConsoleSessions:
    """Signs sessions into cookie values and reads them back; `secret` is the deployment's."""

    def __init__(self, secret: Callable[[], Awaitable[bytes]], *, max_age_s: int = DEFAULT_MAX_AGE_S) -> None:
        self._secret = secret
        self.max_age_s = max_age_s
        self._serializer: URLSafeTimedSerializer | None = None

    async def serializer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            self._serializer = URLSafeTimedSerializer(await self._secret(), salt=SALT)
        return self._serializer

    async def read(self, connection: HTTPConnection) -> Session | None:
        """The request's session, if its cookie is one this deployment signed within `max_age_s`."""
        raw = connection.cookies.get(COOKIE_NAME)
        if not raw:
            return None
        try:
            data: Any = (await self.serializer()).loads(raw, max_age=self.max_age_s)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        return _session(data)

    async def write(self, response: Response, session: Session, *, secure: bool) -> None:
        value = (await self.serializer()).dumps(
            {"c": session.csrf, "in": session.signed_in, "k": session.key_id, "t": session.tenant}
        )
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self.max_age_s,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")


def _session(data: Any) -> Session | None:
    """A signed cookie's data as a Session; None for a shape this module never writes."""
    if not isinstance(data, dict):
        return None
    csrf, signed, key_id, tenant = data.get("c"), data.get("in"), data.get("k"), data.get("t")
    if not isinstance(csrf, str) or not isinstance(signed, bool):
        return None
    if key_id is not None and not isinstance(key_id, str) or tenant is not None and not isinstance(tenant, str):
        return None
    return Session(csrf=csrf, signed_in=signed, key_id=key_id, tenant=tenant)
