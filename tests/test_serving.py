"""The real HTTP server (a `bayeslift serve` subprocess on a free loopback port), tested over HTTP."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import PROCESS_ENV
from serving_constants import (EQUALITY_USERS, FLOAT_FORMAT, SERVER_START_TIMEOUT, TEST_MAX_BODY_BYTES,
                               TEST_MAX_INSTANCES)

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"
FIELDS = ["customer_id", "past_spend", "recency", "tenure", "is_new", "channel"]
OUTPUTS = ["spend_if_treated", "spend_if_control", "uplift", "uplift_lower", "uplift_upper"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_dir: Path, *extra: str, env: dict | None = None):
        self.port = free_port()
        self.model_dir = str(model_dir)
        self.log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "bayeslift.cli", "serve", "--model", str(model_dir), "--port", str(self.port),
               *extra]
        full_env = {k: v for k, v in PROCESS_ENV.items() if k != "BAYESLIFT_API_TOKEN"}
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> "Server":
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"server exited {self.proc.returncode}: {self.log.read().decode()[-3000:]}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not answer /health in time")

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw), dict((k.lower(), v) for k, v in resp.getheaders()), raw
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


GUARDED_COST = 2.5


@pytest.fixture(scope="module")
def servers(truth_surrogate_dir):
    """Both servers start together (each imports torch), then the tests share them."""
    limits = ("--max-body-bytes", str(TEST_MAX_BODY_BYTES), "--max-instances", str(TEST_MAX_INSTANCES))
    plain = Server(truth_surrogate_dir, *limits)
    # the guarded server also runs 2 worker processes: token and policy must reach both
    guarded = Server(truth_surrogate_dir, "--workers", "2", "--cost-per-contact", str(GUARDED_COST),
                     env={"BAYESLIFT_API_TOKEN": TOKEN})
    try:
        yield plain.wait_ready(), guarded.wait_ready()
    finally:
        plain.stop()
        guarded.stop()


@pytest.fixture(scope="module")
def server(servers):
    return servers[0]


@pytest.fixture(scope="module")
def token_server(servers):
    return servers[1]


@pytest.fixture(scope="module")
def users():
    from bayeslift.simulate import simulate_new_users

    frame, _ = simulate_new_users(EQUALITY_USERS, seed=21)
    return frame


def instances(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame[FIELDS].to_json(orient="records", double_precision=15))


def valid_user(**changes) -> dict:
    user = {"customer_id": 7, "past_spend": 120.5, "recency": 3, "tenure": 4.2, "is_new": 0, "channel": "web"}
    user.update(changes)
    return user


def assert_error(resp, status: int, code: str | None = None):
    got, body, _, raw = resp
    assert got == status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert b"Traceback" not in raw and b'File "' not in raw
    for d in body["error"]["details"]:
        assert set(d) == {"index", "field", "problem"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def details_of(error) -> set[tuple]:
    return {(d["index"], d["field"]) for d in error["details"]}


# -- valid requests ---------------------------------------------------------------------------------

def test_health_metadata_openapi(server):
    status, body, headers, _ = server.request("GET", "/health")
    assert status == 200 and body["status"] == "ok" and len(body["model"]["sha256"]) == 64
    assert headers["content-type"] == "application/json"
    status, meta, _, _ = server.request("GET", "/metadata")
    assert status == 200
    assert meta["id"]["name"] == "customer_id"
    by_name = {f["name"]: f for f in meta["features"]}
    assert set(by_name) == set(FIELDS[1:])
    assert by_name["channel"]["allowed"] == ["multichannel", "phone", "web"]
    assert by_name["past_spend"]["type"] == "number" and by_name["past_spend"]["minimum"] == 0
    assert meta["model"] == body["model"]
    assert meta["limits"] == {"max_body_bytes": TEST_MAX_BODY_BYTES, "max_instances": TEST_MAX_INSTANCES,
                              "body_timeout_s": 30.0}
    for name in ("past_spend", "recency", "tenure", "is_new"):  # the training range, widened (data.RANGE_SPAN)
        low, high = by_name[name]["training_range"]
        assert by_name[name]["minimum"] <= low < high <= by_name[name]["maximum"]
    status, doc, _, _ = server.request("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/predict", "/health", "/metadata"} <= set(doc["paths"])
    properties = doc["components"]["schemas"]["Instance"]["properties"]
    assert properties["channel"]["enum"] == by_name["channel"]["allowed"]
    assert properties["tenure"]["maximum"] == by_name["tenure"]["maximum"]
    assert {"408", "413", "422"} <= set(doc["paths"]["/predict"]["post"]["responses"])


def test_single_user(server):
    status, body, _, _ = server.request("POST", "/predict", {"instances": [valid_user()]})
    assert status == 200
    (pred,) = body["predictions"]
    assert list(pred) == ["id", *OUTPUTS, "treat"] and pred["id"] == 7
    assert pred["uplift_lower"] <= pred["uplift"] <= pred["uplift_upper"]
    assert pred["uplift"] == pytest.approx(pred["spend_if_treated"] - pred["spend_if_control"])
    assert pred["treat"] is (pred["uplift"] > 0)
    assert body["model"]["sha256"] == server.request("GET", "/health")[1]["model"]["sha256"]


def test_batch_matches_score_file(server, users, tmp_path):
    """Same users through HTTP and through batch scoring: equal after formatting both with %.9g."""
    from bayeslift.scoring import score_file

    csv = tmp_path / "users.csv"
    users.to_csv(csv, index=False)
    score_file(server.model_dir, csv, tmp_path / "scored.csv", progress=False)
    batch = pd.read_csv(tmp_path / "scored.csv", dtype={"customer_id": str})
    sent = pd.read_csv(csv, dtype={"customer_id": str, "channel": str})  # the values batch scoring read
    payload = [{**u, "customer_id": str(u["customer_id"])} for u in sent[FIELDS].to_dict(orient="records")]
    status, body, _, _ = server.request("POST", "/predict", {"instances": payload})
    assert status == 200
    preds = body["predictions"]
    assert [p["id"] for p in preds] == batch["customer_id"].tolist()  # same order as sent
    for col in OUTPUTS:
        http_values = [FLOAT_FORMAT % p[col] for p in preds]
        batch_values = [FLOAT_FORMAT % v for v in batch[col]]
        assert http_values == batch_values, col
    # ... and the batch file's own text: reading "%.9g" back and re-formatting gives the same text
    assert [p["treat"] for p in preds] == (np.array([p["uplift"] for p in preds]) > 0).tolist()


def test_order_and_ids_kept(server):
    batch = [valid_user(customer_id=f"u{i}", recency=i) for i in range(20)]
    batch[3]["customer_id"] = 12345
    status, body, _, _ = server.request("POST", "/predict", {"instances": batch, "extra": "ignored"})
    assert status == 200
    assert [p["id"] for p in body["predictions"]] == [u["customer_id"] for u in batch]
    single = [server.request("POST", "/predict", {"instances": [u]})[1]["predictions"][0] for u in batch[:3]]
    for a, b in zip(single, body["predictions"][:3]):
        for col in OUTPUTS:
            assert FLOAT_FORMAT % a[col] == FLOAT_FORMAT % b[col]


@pytest.mark.parametrize("ids", [[2**70, -(2**65), 2**63 - 1, 5], ["\ud800x", 2**70]],
                         ids=["integers beyond 64 bits", "lone surrogate"])
def test_ids_beyond_the_fast_json_paths_echoed(server, ids):
    """orjson reads huge integers as floats and refuses lone surrogates; the server falls back, never 422/500s."""
    body = json.dumps({"instances": [valid_user(customer_id=i) for i in ids]})  # ensure_ascii escapes \ud800
    status, payload, _, _ = server.request("POST", "/predict", body)
    assert status == 200, payload
    assert [p["id"] for p in payload["predictions"]] == ids


def test_max_instances_accepted(server):
    batch = [valid_user(customer_id=i) for i in range(TEST_MAX_INSTANCES)]
    assert server.request("POST", "/predict", {"instances": batch})[0] == 200


# -- errors -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{", b"not json", b"", b'{"instances": [}', b"\xff\xfe\x00garbage", b"[" * 100_00])
def test_malformed_json_400(server, body):
    assert_error(server.request("POST", "/predict", body), 400, "malformed_json")


def test_unknown_path_404(server):
    assert_error(server.request("GET", "/nope"), 404, "not_found")
    assert_error(server.request("POST", "/predict/extra", {"instances": []}), 404)


def test_wrong_method_405(server):
    error = server.request("GET", "/predict")
    assert_error(error, 405, "method_not_allowed")
    assert error[2]["allow"] == "POST"
    assert_error(server.request("POST", "/health", b"{}"), 405)
    assert_error(server.request("DELETE", "/metadata"), 405)


def test_body_too_large_413(server):
    padding = " " * (TEST_MAX_BODY_BYTES + 10)
    body = '{"instances": [' + json.dumps(valid_user()) + "]" + padding + "}"
    assert_error(server.request("POST", "/predict", body), 413, "body_too_large")
    # the server keeps working afterwards
    assert server.request("POST", "/predict", {"instances": [valid_user()]})[0] == 200


def test_too_many_instances_413(server):
    batch = [{"customer_id": i} for i in range(TEST_MAX_INSTANCES + 1)]
    assert_error(server.request("POST", "/predict", {"instances": batch}), 413, "too_many_instances")


@pytest.mark.parametrize("payload, expected", [
    ({"instances": [{k: v for k, v in valid_user().items() if k != "recency"}]}, {(0, "recency")}),
    ({"instances": [valid_user(), valid_user(tenure="4.2")]}, {(1, "tenure")}),
    ({"instances": [valid_user(is_new=True)]}, {(0, "is_new")}),
    ({"instances": [valid_user(past_spend=None)]}, {(0, "past_spend")}),
    ({"instances": [valid_user(past_spend=-1.0)]}, {(0, "past_spend")}),
    ({"instances": [valid_user(recency=[1])]}, {(0, "recency")}),
    ({"instances": [valid_user(channel="fax")]}, {(0, "channel")}),
    ({"instances": [valid_user(channel=3)]}, {(0, "channel")}),
    ({"instances": [valid_user(customer_id=1.5)]}, {(0, "customer_id")}),
    ({"instances": [valid_user(), valid_user(channel="Web", tenure={})]}, {(1, "channel"), (1, "tenure")}),
    ({"instances": [valid_user(), 5]}, {(1, None)}),
    ({"instances": []}, {(None, "instances")}),
    ({"instances": {"customer_id": 1}}, {(None, "instances")}),
    ({"users": []}, {(None, "instances")}),
    ([valid_user()], {(None, None)}),
])
def test_invalid_instances_422(server, payload, expected):
    error = assert_error(server.request("POST", "/predict", payload), 422)
    assert details_of(error) == expected


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_non_finite_422(server, literal):
    body = json.dumps({"instances": [valid_user(), valid_user()]}).replace('"tenure": 4.2', f'"tenure": {literal}', 1)
    assert literal in body
    error = assert_error(server.request("POST", "/predict", body), 422)
    assert details_of(error) == {(0, "tenure")}


def test_non_finite_in_ignored_field_422(server):
    body = '{"instances": [' + json.dumps(valid_user())[:-1] + ', "note": NaN}]}'
    assert_error(server.request("POST", "/predict", body), 422)


def test_extreme_values_never_500(server):
    for value in (1e308, -1e308, 10 ** 400, 2 ** 63, 1e-320):
        status = server.request("POST", "/predict", {"instances": [valid_user(recency=value, tenure=value)]})[0]
        assert status in (200, 422)


def test_token_required_401(token_server):
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert token_server.request("GET", "/health")[0] == 200  # liveness stays open for load balancers
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        resp = token_server.request("POST", "/predict", {"instances": [valid_user()]}, headers=headers)
        assert_error(resp, 401, "unauthorized")
        assert resp[2]["www-authenticate"].startswith("Bearer")
        assert_error(token_server.request("GET", "/metadata", headers=headers), 401)
    assert token_server.request("POST", "/predict", {"instances": [valid_user()]}, headers=ok)[0] == 200
    assert token_server.request("GET", "/metadata", headers=ok)[1]["limits"]["max_body_bytes"] == 1 << 20


def test_workers_share_model_and_settings(server, token_server, users):
    """2 worker processes answer like 1 (same numbers), each with the token and policy it was started with."""
    ok = {"Authorization": f"Bearer {TOKEN}"}
    payload = {"instances": instances(users.head(50))}
    one = server.request("POST", "/predict", payload)[1]["predictions"]
    for _ in range(20):  # new connections land on either worker
        status, body, _, _ = token_server.request("POST", "/predict", payload, headers=ok)
        assert status == 200
        two = body["predictions"]
        for a, b in zip(one, two):
            assert {k: a[k] for k in OUTPUTS} == {k: b[k] for k in OUTPUTS}
            assert b["treat"] is (b["uplift"] - GUARDED_COST > 0)
        assert_error(token_server.request("POST", "/predict", payload), 401)
    meta = token_server.request("GET", "/metadata", headers=ok)[1]
    assert meta["policy"]["cost_per_contact"] == GUARDED_COST


def keep_alive_predictions(port: int, requests: int, pause_s: float = 0.0) -> None:
    """``requests`` one-user predictions on one keep-alive connection, ``pause_s`` apart; each must be 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"instances": [valid_user()]})
    try:
        for _ in range(requests):
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
            time.sleep(pause_s)
    finally:
        conn.close()


def test_keep_alive_many_requests(server):
    keep_alive_predictions(server.port, 50)


def test_bad_model_dir_refused(tmp_path, truth_surrogate_dir):
    import shutil

    broken = tmp_path / "surrogate"
    shutil.copytree(truth_surrogate_dir, broken)
    with open(broken / "spend_scaler.pkl", "ab") as fh:
        fh.write(b"tampered")
    proc = subprocess.run([sys.executable, "-m", "bayeslift.cli", "serve", "--model", str(broken),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env=PROCESS_ENV)
    assert proc.returncode == 1
    assert "does not match the manifest" in proc.stderr


def test_head_and_odd_methods_answered(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("HEAD", "/predict")
        resp = conn.getresponse()
        assert resp.status == 405 and resp.read() == b"" and resp.getheader("allow") == "POST"
        conn.request("GET", "/health")  # the connection is still usable
        assert conn.getresponse().status == 200
    finally:
        conn.close()
