"""Bad-input matrix, HTTP side: hostile requests to a real `bayeslift serve` subprocess over real sockets.

Cases test_serving.py already holds (malformed JSON, wrong types in features, NaN in a feature, bodies over
the limit, too many instances) are not repeated; these are the ones the hostile-input probe found.
"""
from __future__ import annotations

import http.client
import json
import os
import select
import socket
import time

import pytest

from conftest import PROCESS_ENV
from test_serving import Server, assert_error, details_of, keep_alive_predictions, valid_user

BODY_TIMEOUT_S = 1.0  # short, so a stalled client is cut off quickly
MAX_BODY_BYTES = 16 * 1024  # room for a 5,000-digit number; both limits in their allowed ranges
MAX_INSTANCES = 5
TIMEOUT_SLACK_S = 3.0  # a loaded 2-core machine may answer this much after the deadline
HUGE_DIGITS = 5000  # past Python's 4,300-digit int-from-text limit


@pytest.fixture(scope="module")
def server(truth_surrogate_dir):
    srv = Server(truth_surrogate_dir, "--body-timeout-s", str(BODY_TIMEOUT_S), "--max-body-bytes",
                 str(MAX_BODY_BYTES), "--max-instances", str(MAX_INSTANCES))
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def h11_workers(truth_surrogate_dir, tmp_path_factory):
    """2 worker processes (each imports the protocol class by name) on uvicorn's pure-Python h11 parser, as
    where httptools is not installed: a stand-in package hides it from the server and its workers."""
    hide = tmp_path_factory.mktemp("no_httptools")
    (hide / "httptools").mkdir()
    (hide / "httptools" / "__init__.py").write_text("raise ImportError('httptools hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(hide), PROCESS_ENV.get("PYTHONPATH")]))
    srv = Server(truth_surrogate_dir, "--body-timeout-s", str(BODY_TIMEOUT_S), "--workers", "2",
                 env={"PYTHONPATH": path})
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def metadata(server):
    return {f["name"]: f for f in server.request("GET", "/metadata")[1]["features"]}


def body_with(field: str, literal: str, others: int = 0) -> str:
    """A request whose last instance has ``field`` set to the raw JSON text ``literal``."""
    users = [json.dumps(valid_user(customer_id=i)) for i in range(others)]
    user = json.dumps(valid_user(**{field: "PLACEHOLDER"})).replace('"PLACEHOLDER"', literal)
    return '{"instances": [' + ", ".join([*users, user]) + "]}"


def raw_exchange(port: int, head: bytes, parts=(), pause_s: float = 0.0, wait_s: float = 30.0):
    """Send ``head`` then each of ``parts`` ``pause_s`` apart, then stall; (seconds from the last byte sent to the
    answer, the raw answer up to the server closing the connection). Sending stops once an answer is waiting:
    bytes sent to a closed socket would reset the connection and could lose the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(head)
        for part in parts:
            if select.select([sock], [], [], pause_s)[0]:
                break
            sock.sendall(part)
        sent = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return time.monotonic() - sent, answer


def parse_raw(answer: bytes) -> tuple[int, dict, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    return int(lines[0].split()[1]), headers, json.loads(body)


# -- valid JSON the fast parser refuses: a 5,000-digit integer ------------------------------------------

@pytest.mark.parametrize("field, problem", [("customer_id", "at most"), ("recency", "must be a finite number"),
                                            ("past_spend", "digits")])
def test_huge_integer_is_422_on_its_field(server, field, problem):
    """Valid JSON (Python refuses to read it past 4,300 digits): a 422 on that field, never 'not valid JSON'."""
    error = assert_error(server.request("POST", "/predict", body_with(field, "9" * HUGE_DIGITS, others=1)), 422)
    assert details_of(error) == {(1, field)}
    assert problem in error["details"][0]["problem"] and f"{HUGE_DIGITS} digits" in error["details"][0]["problem"]


def test_huge_integer_in_an_ignored_field_is_ignored(server):
    status, body, _, _ = server.request("POST", "/predict", body_with("note", "-" + "1" * HUGE_DIGITS))
    assert status == 200 and len(body["predictions"]) == 1


@pytest.mark.parametrize("literal, problem", [("NaN", "got NaN"), ("-Infinity", "got -Infinity"),
                                              ("1e400", "must be a string or an integer"),
                                              ("true", "got boolean"), ("[1]", "got array"), ("null", "got null"),
                                              ('""', "id is empty")])
def test_bad_id_is_422_on_the_id_field(server, literal, problem):
    error = assert_error(server.request("POST", "/predict", body_with("customer_id", literal, others=2)), 422)
    assert details_of(error) == {(2, "customer_id")} and problem in error["details"][0]["problem"]


def test_content_length_of_thousands_of_digits_is_413_not_500(server):
    """int() of a 5,000-digit length would raise: the declared length is too large whatever its digits say."""
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {'0' * (HUGE_DIGITS - 1)}1\r\n\r\n").encode()
    _, answer = raw_exchange(server.port, head)
    status, _, body = parse_raw(answer)
    assert status == 413 and body["error"]["code"] == "body_too_large", answer[:300]
    assert server.request("GET", "/health")[0] == 200


# -- HEAD answers like GET, without a body ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/health", "/metadata", "/openapi.json"])
def test_head_is_get_without_body(server, path):
    _, _, get_headers, get_raw = server.request("GET", path)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("HEAD", path)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b""
        assert resp.getheader("content-type") == "application/json"
        assert int(resp.getheader("content-length")) == len(get_raw) == int(get_headers["content-length"])
    finally:
        conn.close()


# -- bodies that never finish -----------------------------------------------------------------------------

REQUEST_HEAD = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n")


@pytest.mark.parametrize("parts, pause_s", [((b'{"instances": [',), 0.0), ((b"{",) * 8, 0.3)],
                         ids=["stalled after a part", "trickled a byte at a time"])
def test_half_sent_body_is_408_and_closed(server, parts, pause_s):
    """One deadline for the whole body: a client trickling bytes is cut off as one that stalls."""
    started = time.monotonic()
    waited, answer = raw_exchange(server.port, REQUEST_HEAD % 500, parts, pause_s)
    status, headers, body = parse_raw(answer)  # the server closed the connection: recv() returned b""
    assert status == 408 and headers["connection"] == "close"
    assert body["error"]["code"] == "body_timeout" and f"{BODY_TIMEOUT_S:g} s" in body["error"]["message"]
    assert BODY_TIMEOUT_S * 0.9 <= time.monotonic() - started and waited < BODY_TIMEOUT_S + TIMEOUT_SLACK_S
    assert server.request("POST", "/predict", {"instances": [valid_user()]})[0] == 200  # still serving


def test_idle_keep_alive_longer_than_body_timeout_is_fine(server):
    """The body deadline starts with a request: waiting between requests is keep-alive's business."""
    keep_alive_predictions(server.port, 2, pause_s=BODY_TIMEOUT_S * 1.5)


def test_declared_oversize_body_is_413_at_once(server):
    """A Content-Length far over the limit is answered before any body byte is sent; others are still served."""
    waited, answer = raw_exchange(server.port, REQUEST_HEAD % (MAX_BODY_BYTES * 1000))
    status, _, body = parse_raw(answer)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    # answered at once: had the server waited for the body, the answer would be a 408, not this 413
    assert str(MAX_BODY_BYTES) in body["error"]["message"]
    assert server.request("POST", "/predict", {"instances": [valid_user()]})[0] == 200


# -- headers that never finish (slowloris) ---------------------------------------------------------------

def closed_after(sock: socket.socket, since: float) -> float:
    """Seconds from ``since`` to the server closing ``sock``, which must send nothing first."""
    try:
        assert sock.recv(65536) == b"", "the server answered instead of closing"
    except ConnectionResetError:
        pass  # a byte sent just as the server closed comes back as a reset: closed all the same, with no answer
    return time.monotonic() - since


STALLED_HEADS = {"nothing": b"", "half a request line": b"POST /predi",
                 "headers without their end": (REQUEST_HEAD % 20).removesuffix(b"\r\n")}


@pytest.mark.parametrize("which", ["server", "h11_workers"], ids=["httptools, 1 worker", "h11, 2 workers"])
@pytest.mark.parametrize("head", list(STALLED_HEADS.values()), ids=list(STALLED_HEADS))
def test_stalled_headers_are_cut_off(request, which, head):
    """uvicorn times only idle keep-alive: without a header deadline these connections were held forever."""
    srv = request.getfixturevalue(which)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        opened = time.monotonic()
        sock.sendall(head)
        assert srv.request("POST", "/predict", {"instances": [valid_user()]})[0] == 200  # others are served meanwhile
        waited = closed_after(sock, opened)
    assert BODY_TIMEOUT_S * 0.9 <= waited < BODY_TIMEOUT_S + TIMEOUT_SLACK_S


def test_trickled_headers_are_cut_off_at_one_deadline(server):
    """A byte every half deadline: a timer reset by each packet would hold this connection for ever."""
    head = REQUEST_HEAD % 20
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        opened = time.monotonic()
        for k in range(len(head)):
            if select.select([sock], [], [], BODY_TIMEOUT_S / 2)[0]:
                break  # the server closed the connection
            sock.sendall(head[k:k + 1])
        waited = closed_after(sock, opened)
    assert BODY_TIMEOUT_S * 0.9 <= waited < BODY_TIMEOUT_S + TIMEOUT_SLACK_S


def test_next_request_on_keep_alive_has_the_same_header_deadline(server):
    """Idle time after a response is keep-alive's (30 s); once the next request begins, its headers are timed."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/predict", body=json.dumps({"instances": [valid_user()]}),
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().read() and conn.sock is not None  # kept alive
        time.sleep(BODY_TIMEOUT_S * 1.5)  # idle longer than the deadline: not counted
        started = time.monotonic()
        conn.sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        assert closed_after(conn.sock, started) < BODY_TIMEOUT_S + TIMEOUT_SLACK_S
    finally:
        conn.close()


# -- the training-range bound ----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("tenure", 1e6), ("recency", -1e4), ("past_spend", 1e12), ("is_new", 3)])
def test_beyond_training_range_is_422_naming_index_and_field(server, metadata, field, value):
    assert not metadata[field]["minimum"] <= value <= metadata[field]["maximum"]
    batch = [valid_user(customer_id=i) for i in range(3)]
    batch[1][field] = value
    error = assert_error(server.request("POST", "/predict", {"instances": batch}), 422, "out_of_range")
    assert details_of(error) == {(1, field)}
    assert "training" in error["details"][0]["problem"] and field in error["details"][0]["problem"]


def test_metadata_bounds_are_the_ones_enforced(server, metadata):
    """A value at a feature's advertised minimum/maximum is scored; one a little beyond is refused."""
    for field in ("tenure", "recency", "past_spend"):
        low, high = metadata[field]["minimum"], metadata[field]["maximum"]
        inside = [valid_user(**{field: low}), valid_user(**{field: high})]
        assert server.request("POST", "/predict", {"instances": inside})[0] == 200, field
        beyond = high + 0.01 * (high - low)
        assert_error(server.request("POST", "/predict", {"instances": [valid_user(**{field: beyond})]}), 422)


def test_range_and_type_problems_reported_together(server):
    batch = [valid_user(tenure=1e6), valid_user(channel="fax"), valid_user()]
    error = assert_error(server.request("POST", "/predict", {"instances": batch}), 422, "invalid_instances")
    assert details_of(error) == {(0, "tenure"), (1, "channel")}
