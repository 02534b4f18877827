"""Property-based fuzzing of the request schema against the shared core handler: never a 5xx."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving_constants import FUZZ_MAX_EXAMPLES

FIELDS = ["customer_id", "past_spend", "recency", "tenure", "is_new", "channel"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["web", "phone", "multichannel", "Web", "", "\u00e9\u4e2d\U0001f600", "\x00"]),
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0, 2 ** 63, -(2 ** 63), 10 ** 400]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
field_values = {
    "customer_id": st.one_of(st.integers(), st.text(max_size=10), json_values),
    "past_spend": st.one_of(st.floats(min_value=0, allow_infinity=False), json_values),
    "recency": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(), json_values),
    "tenure": st.one_of(st.floats(allow_nan=False, allow_infinity=False), json_values),
    "is_new": st.one_of(st.sampled_from([0, 1]), json_values),
    "channel": st.one_of(st.sampled_from(["web", "phone", "multichannel"]), json_values),
}
instance = st.fixed_dictionaries({}, optional={k: v for k, v in field_values.items()}) | json_values
bodies = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(instance, max_size=6)}),
    st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    json_values,
)


@pytest.fixture(scope="module")
def service(truth_surrogate_dir):
    from bayeslift.serving import PredictionService, ServingConfig

    return PredictionService.load(truth_surrogate_dir, ServingConfig(max_body_bytes=64 * 1024, max_instances=5))


def check(service, method, path, body: bytes):
    from bayeslift.serving import render

    response = service.handle_request(method, path, {}, body)
    assert 200 <= response.status < 500, response.body
    payload = json.loads(render(response))
    if response.status == 200:
        for pred in payload.get("predictions", []):
            assert all(math.isfinite(pred[k]) for k in pred if k not in ("id", "treat"))
    else:
        assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message", "details"}
        for d in payload["error"]["details"]:
            assert set(d) == {"index", "field", "problem"}
    return response.status


@settings(max_examples=FUZZ_MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_structured_bodies_never_5xx(service, body):
    check(service, "POST", "/predict", json.dumps(body, allow_nan=True).encode())


@settings(max_examples=FUZZ_MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_raw_bytes_never_5xx(service, raw):
    check(service, "POST", "/predict", raw)


@settings(max_examples=FUZZ_MAX_EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "X"]),
       path=st.one_of(st.sampled_from(["/predict", "/health", "/metadata", "/openapi.json", "/", ""]), st.text(max_size=30)),
       body=st.binary(max_size=50))
def test_any_route_never_5xx(service, method, path, body):
    check(service, method, path, body)


@settings(max_examples=FUZZ_MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.lists(st.fixed_dictionaries(field_values), min_size=1, max_size=5))
def test_complete_instances_never_5xx(service, users):
    """Every field present, values mostly plausible: answers are 200 or a 422 naming index and field."""
    status = check(service, "POST", "/predict", json.dumps({"instances": users}, allow_nan=True).encode())
    assert status in (200, 422)
