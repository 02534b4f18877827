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

from ..policy import PolicyConfig
from .core import PredictionService, Response, ServingConfig, error_response, render
from .validation import RequestError, detail

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
    if declared.isdigit() and int(declared) > limit * DRAIN_FACTOR:
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


WORKER_ENV = "BAYESLIFT_SERVE_WORKER"  # how `serve` hands the model and settings to uvicorn's worker processes


def app_from_env():
    """uvicorn app factory for ``workers > 1``: each worker process verifies and loads the model itself."""
    settings = json.loads(os.environ[WORKER_ENV])
    policy = PolicyConfig(**settings["config"].pop("policy"))
    return create_app(PredictionService.load(settings["model_dir"], ServingConfig(**settings["config"], policy=policy)))


def serve(model_dir, host: str = "127.0.0.1", port: int = 8080, config: ServingConfig | None = None,
          workers: int = 1, log_level: str = "warning") -> None:
    """Verify and load the model once (per worker process), then serve until interrupted.

    One worker answers a 1-user request in ~0.3 ms; more workers help only with more free cores than
    the clients' own load leaves (measured in docs/serving.md).
    """
    import uvicorn

    config = config or ServingConfig.from_env()
    options = dict(host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                   server_header=False, timeout_keep_alive=30)
    log.info("serving on http://%s:%d with %d worker(s) (max %d bytes, %d instances per request, body within %g s%s)",
             host, port, workers, config.max_body_bytes, config.max_instances, config.body_timeout_s,
             ", bearer token required" if config.api_token else "")
    if workers == 1:
        uvicorn.run(create_app(PredictionService.load(model_dir, config)), **options)
        return
    PredictionService.load(model_dir, config)  # fail here, once, on a bad model directory
    os.environ[WORKER_ENV] = json.dumps({"model_dir": str(model_dir), "config": dataclasses.asdict(config)})
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
