"""AWS Lambda entry point for API Gateway proxy events (REST API v1 and HTTP API v2).

The model directory comes from ``BAYESLIFT_MODEL_DIR``; it is verified and loaded on the first
invocation and kept for the life of the container. Limits and the optional token come from the same
environment variables as the server (see :meth:`ServingConfig.from_env`). Responses are produced by
the same ``handle_request`` the HTTP server calls, so bodies and status codes are identical.
"""
from __future__ import annotations

import base64
import binascii
import logging
import os

from ..entry import USER_ERRORS
from .core import PredictionService, Response, ServingConfig, error_response, render
from .settings import SettingError
from .validation import RequestError

log = logging.getLogger("bayeslift")

MODEL_DIR_ENV = "BAYESLIFT_MODEL_DIR"
DEFAULT_MODEL_DIR = "/opt/model"
_service: PredictionService | None = None


def get_service() -> PredictionService:
    """The container's service, loaded once."""
    global _service
    if _service is None:
        _service = PredictionService.load(os.environ.get(MODEL_DIR_ENV, DEFAULT_MODEL_DIR), ServingConfig.from_env())
    return _service


def reset_service() -> None:
    """Forget the loaded model (tests; a changed BAYESLIFT_MODEL_DIR)."""
    global _service
    _service = None


def _request_parts(event: dict) -> tuple[str, str, dict, bytes | None]:
    """(method, path, lower-case headers, body bytes) of a v1 or v2 proxy event."""
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0" or "http" in context:
        http = context.get("http") or {}
        method = http.get("method", "")
        path = event.get("rawPath") or http.get("path") or "/"
    else:
        method = event.get("httpMethod", "")
        path = event.get("path") or "/"
    stage = context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1:]  # HTTP API rawPath keeps a named stage in front
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items() if v is not None}
    body = event.get("body")
    if body is None:
        return method, path, headers, b""
    if event.get("isBase64Encoded"):
        try:
            return method, path, headers, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "malformed_body", "isBase64Encoded is true but the body is not base64") from None
    return method, path, headers, body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)


def _lambda_response(response: Response, method: str = "") -> dict:
    return {
        "statusCode": response.status,
        "headers": {k.title(): v for k, v in response.headers.items()},
        "body": "" if method.upper() == "HEAD" else render(response).decode("utf-8"),  # HEAD: headers only
        "isBase64Encoded": False,
    }


def _internal_error() -> dict:
    """The 500 a client gets whatever went wrong at load: the cause is in the log, not in the answer."""
    return _lambda_response(error_response(RequestError(500, "internal_error", "internal server error")))


def lambda_handler(event, context=None) -> dict:
    """API Gateway proxy event -> proxy response with the same status and body as the HTTP server."""
    try:
        if not isinstance(event, dict):
            raise RequestError(400, "malformed_event", "not an API Gateway proxy event")
        service = get_service()
        method, path, headers, body = _request_parts(event)
    except RequestError as exc:
        return _lambda_response(error_response(exc))
    except SettingError as exc:  # a BAYESLIFT_* variable out of range: the message names it
        log.error("bad serving setting: %s", exc)
        return _internal_error()
    except USER_ERRORS as exc:  # a missing, tampered or truncated model folder: its message names the file
        log.error("bayeslift error: %s", exc)
        return _internal_error()
    except Exception:  # a bug: the traceback is what a maintainer needs
        log.exception("could not load the model or read the event")
        return _internal_error()
    return _lambda_response(service.handle_request(method, path, headers, body), method)
