"""The Lambda handler on realistic API Gateway proxy events (REST API v1 and HTTP API v2)."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import copy
import json
import logging

import pytest

from bayeslift.serving import lambda_handler as lh
from test_model_folder import flip_byte

USER = {"customer_id": "c-1", "past_spend": 120.5, "recency": 3, "tenure": 4.2, "is_new": 0, "channel": "web"}

V1_EVENT = {
    "resource": "/predict",
    "path": "/predict",
    "httpMethod": "POST",
    "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
                "User-Agent": "curl/8.5.0", "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Port": "443",
                "X-Forwarded-Proto": "https"},
    "multiValueHeaders": {"Content-Type": ["application/json"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourceId": "x1y2z3", "resourcePath": "/predict", "httpMethod": "POST", "extendedRequestId": "abc=",
        "requestTime": "23/Nov/2026:07:00:00 +0000", "path": "/prod/predict", "accountId": "123456789012",
        "protocol": "HTTP/1.1", "stage": "prod", "domainPrefix": "abc123", "requestTimeEpoch": 1795417200000,
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "apiId": "abc123",
    },
    "body": json.dumps({"instances": [USER]}),
    "isBase64Encoded": False,
}

V2_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/predict",
    "rawQueryString": "",
    "headers": {"content-type": "application/json", "host": "abc123.execute-api.eu-west-1.amazonaws.com",
                "user-agent": "curl/8.5.0", "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https",
                "content-length": "120"},
    "requestContext": {
        "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                 "userAgent": "curl/8.5.0"},
        "requestId": "JKJaXmPLvHcESHA=", "routeKey": "$default", "stage": "$default",
        "time": "23/Nov/2026:07:00:00 +0000", "timeEpoch": 1795417200000,
    },
    "body": json.dumps({"instances": [USER]}),
    "isBase64Encoded": False,
}


@pytest.fixture
def handler(truth_surrogate_dir, monkeypatch):
    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(truth_surrogate_dir))
    monkeypatch.delenv("BAYESLIFT_API_TOKEN", raising=False)
    monkeypatch.setenv("BAYESLIFT_MAX_INSTANCES", "50")
    lh.reset_service()
    yield lh.lambda_handler
    lh.reset_service()


def v1(**changes):
    event = copy.deepcopy(V1_EVENT)
    event.update(changes)
    return event


def v2(method="POST", path="/predict", **changes):
    event = copy.deepcopy(V2_EVENT)
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event.update(changes)
    return event


def parsed(response):
    assert set(response) >= {"statusCode", "headers", "body"}
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"])


def test_v1_and_v2_predict_same_body(handler):
    s1, b1 = parsed(handler(v1(), None))
    s2, b2 = parsed(handler(v2(), None))
    assert s1 == s2 == 200
    assert b1 == b2
    assert b1["predictions"][0]["id"] == "c-1"
    assert len(b1["model"]["sha256"]) == 64


def test_same_as_core_handler(handler):
    """Identical bodies and status codes to what the HTTP server answers (both call handle_request)."""
    service = lh.get_service()
    for body in (json.dumps({"instances": [USER]}), "{", '{"instances": []}'):
        direct = service.handle_request("POST", "/predict", {}, body.encode())
        status, payload = parsed(handler(v2(body=body), None))
        assert (status, payload) == (direct.status, json.loads(json.dumps(direct.body)))


def test_base64_body(handler):
    body = base64.b64encode(json.dumps({"instances": [USER, {**USER, "customer_id": "c-2"}]}).encode()).decode()
    for event in (v1(body=body, isBase64Encoded=True), v2(body=body, isBase64Encoded=True)):
        status, payload = parsed(handler(event, None))
        assert status == 200 and [p["id"] for p in payload["predictions"]] == ["c-1", "c-2"]
    status, payload = parsed(handler(v2(body="@@not base64@@", isBase64Encoded=True), None))
    assert status == 400 and payload["error"]["code"] == "malformed_body"


def test_get_routes(handler):
    for path in ("/health", "/metadata", "/openapi.json"):
        ev1 = v1(httpMethod="GET", path=path, resource=path, body=None)
        s1, b1 = parsed(handler(ev1, None))
        s2, b2 = parsed(handler(v2("GET", path, body=None), None))
        assert s1 == s2 == 200 and b1 == b2
    assert b1["openapi"].startswith("3.")


def test_head_answers_get_headers_without_body(handler):
    for event in (v1(httpMethod="HEAD", path="/health", resource="/health", body=None),
                  v2("HEAD", "/metadata", body=None)):
        response = handler(event, None)
        assert response["statusCode"] == 200 and response["body"] == ""
    response = handler(v2("HEAD", "/predict", body=None), None)
    assert response["statusCode"] == 405 and response["headers"]["Allow"] == "POST"


@pytest.mark.parametrize("variable, value", [("BAYESLIFT_MAX_INSTANCES", "abc"), ("BAYESLIFT_MAX_BODY_BYTES", "0"),
                                             ("BAYESLIFT_BODY_TIMEOUT_S", "nan")])
def test_bad_setting_is_500_and_logged_by_name(truth_surrogate_dir, monkeypatch, caplog, variable, value):
    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(truth_surrogate_dir))
    monkeypatch.setenv(variable, value)
    lh.reset_service()
    try:
        status, payload = parsed(lh.lambda_handler(v2(), None))
        assert status == 500 and payload["error"]["code"] == "internal_error"
        assert variable in caplog.text and "Traceback" not in caplog.text
    finally:
        lh.reset_service()


def test_named_stage_prefix_in_v2_raw_path(handler):
    event = v2(path="/prod/predict")
    event["requestContext"]["stage"] = "prod"
    assert parsed(handler(event, None))[0] == 200


@pytest.mark.parametrize("event, status", [
    (lambda: v1(body="{"), 400),
    (lambda: v2(body="not json"), 400),
    (lambda: v1(body=None), 400),
    (lambda: v2(path="/nope"), 404),
    (lambda: v1(path="/nope"), 404),
    (lambda: v2("GET"), 405),
    (lambda: v1(httpMethod="PUT"), 405),
    (lambda: v2(body=json.dumps({"instances": [{**USER, "channel": "fax"}]})), 422),
    (lambda: v2(body=json.dumps({"instances": [{**USER, "tenure": None}]})), 422),
    (lambda: v1(body=json.dumps({"instances": []})), 422),
    (lambda: v1(body='{"instances": [{"customer_id": 1, "past_spend": NaN}]}'), 422),
    (lambda: v2(body=json.dumps({"instances": [USER] * 51})), 413),
    (lambda: v2(body=json.dumps({"instances": [{**USER, "tenure": 1e6}]})), 422),  # beyond the training range
    (lambda: v2(body='{"instances": [{"customer_id": 1' + "0" * 5000 + ', "past_spend": 1}]}'), 422),
])
def test_errors(handler, event, status):
    got, payload = parsed(handler(event(), None))
    assert got == status
    assert set(payload["error"]) == {"code", "message", "details"}


def test_body_limit_and_token_from_env(truth_surrogate_dir, monkeypatch):
    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(truth_surrogate_dir))
    monkeypatch.setenv("BAYESLIFT_MAX_BODY_BYTES", "1024")  # the smallest limit allowed: ~9 users
    monkeypatch.setenv("BAYESLIFT_API_TOKEN", "tok")
    lh.reset_service()
    try:
        auth = {"authorization": "Bearer tok"}
        assert parsed(lh.lambda_handler(v2(), None))[0] == 401
        assert parsed(lh.lambda_handler(v2(headers=auth), None))[0] == 200
        big = json.dumps({"instances": [USER] * 10})
        assert parsed(lh.lambda_handler(v2(headers=auth, body=big), None))[0] == 413
        assert parsed(lh.lambda_handler(v1(headers={"Authorization": "Bearer tok"}), None))[0] == 200
        assert parsed(lh.lambda_handler(v1(headers=None), None))[0] == 401
    finally:
        lh.reset_service()


def test_model_loaded_once(handler, monkeypatch):
    handler(v2(), None)
    first = lh.get_service()
    handler(v1(), None)
    assert lh.get_service() is first


INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal server error", "details": []}}


@pytest.mark.parametrize("damage, names", [
    (lambda folder: shutil.rmtree(folder), ["surrogate: model folder not found"]),
    (lambda folder: flip_byte(folder / "surrogate_nn.pth"), ["surrogate_nn.pth"]),
    (lambda folder: (folder / "manifest.json").unlink(), ["manifest.json", "no manifest"]),
], ids=["missing folder", "flipped byte in the weights", "no manifest"])
def test_bad_model_folder_is_500_and_one_line_in_the_log(truth_surrogate_dir, tmp_path, monkeypatch, caplog, damage,
                                                        names):
    """A cold start on a bad model folder: the client gets the plain 500, the log the loader's one-line message
    (before: a traceback)."""
    folder = tmp_path / "surrogate"
    shutil.copytree(truth_surrogate_dir, folder)
    damage(folder)
    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(folder))
    lh.reset_service()
    try:
        status, payload = parsed(lh.lambda_handler(v2(), None))
        assert status == 500 and payload == INTERNAL_ERROR
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "Traceback" not in caplog.text
        line = errors[0]
        assert line.startswith("bayeslift error: ") and all(name in line for name in names), line
    finally:
        lh.reset_service()


def test_unexpected_load_failure_keeps_its_traceback(truth_surrogate_dir, monkeypatch, caplog):
    """Only a user's error is one line: a bug in loading is logged with the traceback a maintainer needs."""
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(truth_surrogate_dir))
    monkeypatch.setattr(lh.PredictionService, "load", broken)
    lh.reset_service()
    try:
        assert parsed(lh.lambda_handler(v2(), None)) == (500, INTERNAL_ERROR)
        assert "Traceback" in caplog.text and "RuntimeError: a bug" in caplog.text
    finally:
        lh.reset_service()


# -- the container image's package list ---------------------------------------------------------------

IMAGE_CHECK = r"""
import importlib.abc, importlib.metadata as md, json, sys
allowed = set(json.loads(sys.argv[1]))
owners = md.packages_distributions()

class OnlyImageDistributions(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        dists = {d.lower().replace("_", "-") for d in owners.get(top, [])}
        if dists and not dists & allowed and top != "bayeslift":
            raise ImportError(f"{name} (distribution {sorted(dists)}) is not installed in the Lambda image")
        return None

sys.meta_path.insert(0, OnlyImageDistributions())
from bayeslift.serving.lambda_handler import lambda_handler
print(json.dumps(lambda_handler(json.loads(sys.argv[2]), None)))
"""


def _image_pins() -> dict[str, str]:
    from conftest import REPO

    text = (REPO / "Dockerfile.lambda").read_text()
    return dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", text))


def _with_dependencies(names) -> set[str]:
    """Distribution names plus everything they require (markers with extras skipped), normalized."""
    from importlib import metadata

    seen, todo = set(), [n.lower().replace("_", "-") for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" not in req:
                todo.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return seen


def test_lambda_image_packages_are_enough(truth_surrogate_dir, tmp_path):
    """Dockerfile.lambda pins what requirements.txt pins, and with only those distributions importable the
    handler loads the model and answers a real-shaped event."""
    from conftest import PROCESS_ENV, REPO

    pins = _image_pins()
    required = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().split()
                    if "==" in line and not line.startswith("#"))
    assert {k: v for k, v in pins.items() if k in required} == {k: required[k] for k in pins if k in required}
    assert set(pins) - set(required) == set(), "the image installs packages requirements.txt does not pin"
    env = {**PROCESS_ENV, "BAYESLIFT_MODEL_DIR": str(truth_surrogate_dir)}
    env.pop("BAYESLIFT_API_TOKEN", None)
    proc = subprocess.run([sys.executable, "-c", IMAGE_CHECK, json.dumps(sorted(_with_dependencies(pins))),
                           json.dumps(v2())], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    response = json.loads(proc.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
