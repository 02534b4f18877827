"""A lean ASGI app over :class:`PredictionService`, run by uvicorn.

No framework on the hot path: the app reads the body (stopping at the configured limit), calls the
shared ``handle_request`` and writes the JSON bytes. Scoring runs inline on the event loop: it is
short, CPU-bound work, and a thread hop would cost more than it saves on a 1-user request.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..policy import PolicyConfig
from .core import PredictionService, Response, ServingConfig, error_response, render
from .settings import DEFAULT_BODY_TIMEOUT_S
from .validation import RequestError, detail

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional: uvicorn's own fallback is h11
    HttpToolsProtocol = None

log = logging.getLogger("bayeslift")

DRAIN_FACTOR = 8  # keep reading (and discarding) an oversized body up to this many times the limit


class _Disconnected(Exception):
    """The client went away before its body was read."""


async def _read_body(receive, headers: dict, config: ServingConfig) -> tuple[bytes, bool]:
    """(body, too_large): the body up to ``max_body_bytes``, all of it within ``body_timeout_s`` (one deadline for
    the whole body, so a client trickling a byte at a time is cut off too), else a 408 :class:`RequestError`."""
    limit = config.max_body_bytes
    chunks, size, too_large, more = [], 0, False, True
    declared = headers.get("content-length", "")
    # a length of more digits than any real body is too large (int() of >4,300 digits would raise)
    if declared.isdigit() and (len(declared) > 18 or int(declared) > limit * DRAIN_FACTOR):
        return b"", True  # answer at once; the server closes the connection
    try:
        async with asyncio.timeout(config.body_timeout_s):  # one timer per request, no task per receive()
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                more = message.get("more_body", False)
                if size > limit:
                    too_large = True
                    if size > limit * DRAIN_FACTOR:
                        break
                else:
                    chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, "body_timeout", f"request body not received within {config.body_timeout_s:g} s; "
                           "the connection is closed",
                           [detail(None, None, f"send the whole body within {config.body_timeout_s:g} s")]) from None
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), too_large


async def _send(send, scope, response: Response) -> None:
    payload = render(response)
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    raw_headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    # a HEAD answer carries the headers only (HTTP forbids a body there)
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})


def create_app(service: PredictionService):
    """The ASGI application answering every request through ``service.handle_request``."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body, too_large = await _read_body(receive, headers, service.config)
        except _Disconnected:
            return
        except RequestError as exc:  # the body came too slowly: answer, then drop the connection
            log.info("%s %s -> %d %s", scope["method"], scope["path"], exc.status, exc.message)
            await _send(send, scope, error_response(exc, close=True))
            return
        response = service.handle_request(scope["method"], scope["path"], headers, body, body_too_large=too_large)
        if too_large:  # the rest of the body is unread: close, or the connection waits for it until keep-alive ends
            response = response._replace(headers={**response.headers, "connection": "close"})
        await _send(send, scope, response)

    return app


class _HeaderDeadline:
    """uvicorn's HTTP protocol, plus a deadline for request headers (uvicorn times only idle keep-alive, so a
    client that connects and sends nothing, or part of its headers, would hold its connection forever).

    The deadline runs from the connection opening, or on a keep-alive connection from the first byte of the
    next request (the idle wait before it is keep-alive's), until the headers are complete; then the body
    has its own (``_read_body``). A late client is disconnected: no request was read, so there is none to
    answer. The seconds are ``body_timeout_s``, set per process by :func:`_protocol`.
    """

    timeout_s = DEFAULT_BODY_TIMEOUT_S
    _header_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_headers():
            self._cancel_header_timer()
        elif self._header_timer is None and not self.transport.is_closing():  # the next request has begun
            self._header_timer = self.loop.call_later(self.timeout_s, self._headers_late)

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        # a request's cycle is created when its headers are complete (both h11 and httptools)
        return self.cycle is None or self.cycle.response_complete

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            log.info("closed a connection whose request headers did not arrive within %g s", self.timeout_s)
            self.transport.close()


class H11HeaderDeadline(_HeaderDeadline, H11Protocol):
    """The pure-Python parser, used when httptools is not installed."""


if HttpToolsProtocol is not None:
    class HttpToolsHeaderDeadline(_HeaderDeadline, HttpToolsProtocol):
        """httptools' C parser, as uvicorn's "auto" picks it when installed (about 30% more requests/s)."""


def _protocol(config: ServingConfig) -> str:
    """The protocol class for uvicorn (an import string: worker processes import it themselves), with this
    process's header deadline set."""
    _HeaderDeadline.timeout_s = config.body_timeout_s
    name = "H11HeaderDeadline" if HttpToolsProtocol is None else "HttpToolsHeaderDeadline"
    return f"{__name__}:{name}"


WORKER_ENV = "BAYESLIFT_SERVE_WORKER"  # how `serve` hands the model and settings to uvicorn's worker processes


def app_from_env():
    """uvicorn app factory for ``workers > 1``: each worker process verifies and loads the model itself (and
    sets its header deadline: uvicorn loads the app before it accepts a connection)."""
    settings = json.loads(os.environ[WORKER_ENV])
    policy = PolicyConfig(**settings["config"].pop("policy"))
    config = ServingConfig(**settings["config"], policy=policy)
    _protocol(config)
    return create_app(PredictionService.load(settings["model_dir"], config))


def serve(model_dir, host: str = "127.0.0.1", port: int = 8080, config: ServingConfig | None = None,
          workers: int = 1, log_level: str = "warning") -> None:
    """Verify and load the model once (per worker process), then serve until interrupted.

    One worker answers a 1-user request in ~0.3 ms; more workers help only with more free cores than
    the clients' own load leaves (measured in docs/serving.md).
    """
    import uvicorn

    config = config or ServingConfig.from_env()
    options = dict(host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                   server_header=False, timeout_keep_alive=30, http=_protocol(config))
    log.info("serving on http://%s:%d with %d worker(s) (max %d bytes, %d instances per request, headers and body "
             "each within %g s%s)",
             host, port, workers, config.max_body_bytes, config.max_instances, config.body_timeout_s,
             ", bearer token required" if config.api_token else "")
    if workers == 1:
        uvicorn.run(create_app(PredictionService.load(model_dir, config)), **options)
        return
    PredictionService.load(model_dir, config)  # fail here, once, on a bad model directory
    os.environ[WORKER_ENV] = json.dumps({"model_dir": str(model_dir), "config": dataclasses.asdict(config)})
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
