"""The transport-independent request handler: one function both the HTTP server and Lambda call.

``PredictionService.handle_request(method, path, headers, body)`` returns a :class:`Response` (status,
JSON-ready body, extra headers); :func:`render` turns it into bytes. Every client mistake becomes a
structured 4xx error; anything unexpected is logged (with its traceback) and answered with a bare 500.
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Mapping, NamedTuple

import numpy as np
import orjson

from ..policy import decide
from ..scoring import UpliftScorer
from .openapi import build_openapi
from .settings import ServingConfig
from .validation import RequestError, ValidatedInstances, detail, feature_bounds, parse_body, validate_instances

log = logging.getLogger("bayeslift")

class Response(NamedTuple):
    status: int
    body: dict
    headers: dict


JSON_HEADERS = {"content-type": "application/json"}


def error_response(exc: RequestError, close: bool = False) -> Response:
    """A client error as a response; ``close`` asks the transport to drop the connection after it."""
    headers = {**JSON_HEADERS, **exc.headers, **({"connection": "close"} if close else {})}
    return Response(exc.status, exc.body(), headers)


def render(response: Response) -> bytes:
    """The response body as compact UTF-8 JSON (predictions are checked finite before this)."""
    try:
        return orjson.dumps(response.body)
    except TypeError:  # ids orjson cannot write (integers beyond 64 bits, lone surrogates) that json.loads let in
        return json.dumps(response.body, separators=(",", ":"), allow_nan=False).encode()


class PredictionService:
    """A loaded model plus the serving rules (limits, token, policy)."""

    ROUTES = {"/predict": "POST", "/health": "GET", "/metadata": "GET", "/openapi.json": "GET"}

    def __init__(self, scorer: UpliftScorer, config: ServingConfig | None = None):
        self.scorer = scorer
        self.config = config or ServingConfig()
        self.spec = scorer.spec
        self.model = scorer.version
        self.policy = scorer.policy(self.config.policy)  # top_k: the threshold stored with the model
        self.metadata = self._metadata()
        self.openapi = build_openapi(self.spec, self.model, self.config, scorer.prediction_columns,
                                     scorer.decision_column)
        self._handlers = {"/predict": self._predict, "/health": self._health,
                          "/metadata": lambda _: (200, self.metadata),
                          "/openapi.json": lambda _: (200, self.openapi)}

    @classmethod
    def load(cls, model_dir, config: ServingConfig | None = None) -> "PredictionService":
        """Verify the manifest hashes and load the model once."""
        service = cls(UpliftScorer.load(model_dir), config)
        log.info("loaded model %s (sha256 %s) from %s", service.model["version"], service.model["sha256"], model_dir)
        return service

    # -- the one entry point -------------------------------------------------------------------------
    def handle_request(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                       body_too_large: bool = False) -> Response:
        """``headers`` keys lower-case. ``body_too_large``: the transport stopped reading past the limit."""
        try:
            status, payload = self._dispatch(method.upper(), path, headers, body, body_too_large)
            return Response(status, payload, JSON_HEADERS)
        except RequestError as exc:
            if exc.status >= 500:
                log.error("%s %s -> %d %s", method, path, exc.status, exc.message)
            else:
                log.debug("%s %s -> %d %s", method, path, exc.status, exc.message)
            return error_response(exc)
        except Exception:  # never a stack trace to the client
            log.exception("internal error answering %s %s", method, path)
            return error_response(RequestError(500, "internal_error", "internal server error"))

    def _dispatch(self, method, path, headers, body, body_too_large):
        allowed = self.ROUTES.get(path)
        if allowed is None:
            raise RequestError(404, "not_found", f"no such path {path[:200]!r}; see GET /openapi.json",
                               [detail(None, None, f"known paths: {sorted(self.ROUTES)}")])
        if method == "HEAD" and allowed == "GET":
            method = "GET"  # same status and headers; the transport sends no body
        if method != allowed:
            allow = "GET, HEAD" if allowed == "GET" else allowed
            raise RequestError(405, "method_not_allowed", f"{path} accepts {allow} only",
                               [detail(None, None, f"method {method[:20]} not allowed")], headers={"allow": allow})
        if path != "/health":
            self._authorize(headers)
        if body_too_large or (body is not None and len(body) > self.config.max_body_bytes):
            raise RequestError(413, "body_too_large",
                               f"request body exceeds this server's limit of {self.config.max_body_bytes} bytes",
                               [detail(None, None, f"at most {self.config.max_body_bytes} bytes per request")])
        return self._handlers[path](body)

    def _authorize(self, headers: Mapping[str, str]) -> None:
        token = self.config.api_token
        if not token:
            return
        sent = headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise RequestError(401, "unauthorized", "missing or wrong bearer token",
                               [detail(None, None, "send 'Authorization: Bearer <token>'")],
                               headers={"www-authenticate": 'Bearer realm="bayeslift"'})

    # -- routes --------------------------------------------------------------------------------------
    def _health(self, _body):
        return 200, {"status": "ok", "model": self.model}

    def _predict(self, body: bytes):
        try:
            users = validate_instances(*self._parsed(body))
        except RequestError:  # the error is reported from the exact parse (see parse_body)
            users = validate_instances(*self._parsed(body, fast=False))
        return 200, {"predictions": self.predict(users), "model": self.model}

    def _parsed(self, body: bytes, fast: bool = True):
        payload, non_finite = parse_body(body, fast)
        return payload, self.spec, self.config.max_instances, non_finite

    def predict(self, users: ValidatedInstances) -> list[dict]:
        """Checked users -> one prediction dict per user, vectorized over the batch."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # extremes end as non-finite
            x = self.scorer.encoder.transform(users.columns)
            preds = self.scorer.surrogate.predict_encoded(x)
            matrix = np.column_stack([preds[c] for c in self.scorer.prediction_columns])
            finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise RequestError(422, "out_of_range",
                               f"{len(bad)} instance(s) lie so far outside the training data that the model "
                               "gives no finite prediction",
                               [detail(int(i), None, "prediction is not finite; check the feature values")
                                for i in bad])
        if self.scorer.surrogate.arm_names:
            chosen = self.scorer.decisions(preds, self.policy).tolist()
        else:
            chosen = decide(preds, self.policy).tolist()  # booleans
        keys = ("id", *self.scorer.prediction_columns, self.scorer.decision_column)
        return [dict(zip(keys, row)) for row in zip(users.ids, *matrix.T.tolist(), chosen)]

    def _metadata(self) -> dict:
        spec = self.spec
        bounds = feature_bounds(spec)  # from the training range (the loader requires one per numeric feature)
        features = [{"name": c, "type": "number", "log1p": c in spec.log1p,
                     **({"minimum": 0} if c in spec.log1p else {}), **bounds.get(c, {})} for c in spec.numeric]
        features += [{"name": c, "type": "string", "allowed": list(spec.levels.get(c, []))}
                     for c in spec.categorical]
        return {
            "id": {"name": spec.id, "type": ["string", "integer"]},
            "features": features,
            "outputs": [*self.scorer.prediction_columns, self.scorer.decision_column],
            # spend_if_* are expected outcomes: spend, a probability (binary) or a mean (gaussian)
            "outcome": {"name": spec.outcome, "type": spec.outcome_type},
            "model": self.model,
            "limits": {"max_body_bytes": self.config.max_body_bytes, "max_instances": self.config.max_instances,
                       "body_timeout_s": self.config.body_timeout_s},
            "policy": {"cost_per_contact": self.policy.cost_per_contact, "margin": self.policy.margin,
                       "rule": self.policy.rule, "top_k": self.policy.top_k,
                       "top_k_threshold": self.policy.top_k_threshold, "prob_threshold": self.policy.prob_threshold},
            "auth": "bearer" if self.config.api_token else "none",
            **self._arms_metadata(),
        }

    def _arms_metadata(self) -> dict:
        """Several campaign arms: the levels (best_arm's values) and each arm's cost and margin."""
        if not self.scorer.surrogate.arm_names:
            return {}
        econ = self.scorer.economics(self.policy)
        return {"arms": {"control": self.spec.control, "campaigns": [
            {"level": level, "suffix": name, "cost_per_contact": float(cost), "margin": float(margin)}
            for level, name, cost, margin in zip(self.spec.arms, econ.arms, econ.costs, econ.margins)]}}
