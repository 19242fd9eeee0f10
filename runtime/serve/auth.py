"""The API key: "Authorization: Bearer <key>" on /v1/*, compared in constant time."""

from __future__ import annotations

import hmac

from runtime.serve.config import API_KEY_ENV
from runtime.serve.errors import ServeError

_BEARER = "bearer "


class ApiKey:
    def __init__(self, key: str | None):
        self._key = key.encode("utf-8") if key else None

    def check(self, authorization: str | None) -> None:
        """Nothing when no key is set or the right one is sent; else a 401 naming the fix."""
        if self._key is None:
            return
        if not authorization or not authorization.lower().startswith(_BEARER):
            raise ServeError(401, "missing API key: send the header 'Authorization: Bearer <key>' with the key the "
                             f"server was started with (--api-key or ${API_KEY_ENV})", code="invalid_api_key")
        given = authorization[len(_BEARER):].strip().encode("latin-1")  # the bytes sent: ASGI headers are latin-1
        if not hmac.compare_digest(given, self._key):
            raise ServeError(401, "wrong API key: send the key the server was started with", code="invalid_api_key")
