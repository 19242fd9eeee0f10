"""Errors in OpenAI's JSON shape, with the status a client library maps to its exception types.

Every body is {"error": {"message", "type", "param", "code"}}; the message is one line naming
the fix, as the CLI prints it. Nothing else reaches a client: no traceback, no path of ours.
"""

from __future__ import annotations

import logging

from runtime.errors import MossError, OptionsError

log = logging.getLogger("runtime.serve")

_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          500: "server_error", 503: "server_error"}


class ServeError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param, self.code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def bad_request(message: str, param: str | None = None) -> ServeError:
    return ServeError(400, message, param=param)


def from_exception(error: BaseException, words: dict[str, str] | None = None) -> ServeError:
    """A user's mistake the runtime found becomes a 400 with its message; anything else a 500 that
    says where to look (the server log has the traceback). `words` says the runtime's advice in
    this API's terms (max_new_tokens -> max_tokens); an option's error names it as `param`."""
    if isinstance(error, ServeError):
        return error
    if isinstance(error, MossError):
        message, param = str(error), None
        for said, meant in (words or {}).items():
            message = message.replace(said, meant)
        if isinstance(error, OptionsError):
            param = message.split(" ", 1)[0]
        return bad_request(message, param)
    log.error("request failed", exc_info=error)
    return internal_error()


def internal_error() -> ServeError:
    return ServeError(500, "internal error while answering; the server log has the details")
