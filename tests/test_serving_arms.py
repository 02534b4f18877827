"""Scoring with several campaign arms (issue 25): batch files, the real HTTP server and the Lambda handler give
the same per-arm predictions and the same best arm, from the per-arm costs of the policy."""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from arms_tables import ARMS, three_arm_tables
from bayeslift.policy import PolicyConfig
from bayeslift.scoring import UpliftScorer, score_file
from bayeslift.surrogate.estimator import UpliftSurrogate
from serving_constants import FLOAT_FORMAT
from test_serving import Server

COSTS = {"email_b": {"cost_per_contact": 2.0}}  # email_b costs more; email_a the policy's 1.0
POLICY = PolicyConfig(cost_per_contact=1.0, margin=0.3, arms=COSTS)
OUTPUTS = ["spend_if_control", *(f"{name}{a}{end}" for a in ARMS for name, end in
                                 (("spend_if_", ""), ("uplift_", ""), ("uplift_", "_lower"), ("uplift_", "_upper")))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tables, _ = three_arm_tables(1600, seed=9)
    folder = tmp_path_factory.mktemp("arms_model") / "surrogate"
    UpliftSurrogate(steps=1500, hidden=16, seed=2).fit(tables).save(folder)
    return folder


@pytest.fixture(scope="module")
def users_csv(tmp_path_factory):
    _, users = three_arm_tables(300, seed=31)
    path = tmp_path_factory.mktemp("arms_users") / "users.csv"
    users.drop(columns=["campaign", "spend", "split"]).to_csv(path, index=False)
    return path


def expected_best(frame: pd.DataFrame) -> list[str]:
    profit = np.column_stack([np.zeros(len(frame)), 0.3 * frame["uplift_email_a"] - 1.0,
                              0.3 * frame["uplift_email_b"] - 2.0])
    return [["none", *ARMS][k] for k in profit.argmax(axis=1)]


def test_batch_file_has_each_arm_and_the_best_arm(model_dir, users_csv, tmp_path):
    out = tmp_path / "scored.csv"
    assert score_file(model_dir, users_csv, out, progress=False, policy=POLICY) == 300
    scored = pd.read_csv(out, dtype={"customer_id": str})
    assert list(scored.columns) == ["customer_id", *OUTPUTS, "best_arm"]
    assert scored["best_arm"].tolist() == expected_best(scored)
    assert set(scored["best_arm"]) == {"none", *ARMS}  # the sample is built so that each arm is someone's best
    # Parquet through pandas gives the same numbers and choices as the CSV through Arrow
    parquet_in, parquet_out = tmp_path / "users.parquet", tmp_path / "scored.parquet"
    pd.read_csv(users_csv, dtype={"customer_id": str, "channel": str}).to_parquet(parquet_in)
    score_file(model_dir, parquet_in, parquet_out, progress=False, policy=POLICY)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_out), scored, check_dtype=False)


def test_rules_over_arms_are_checked_before_scoring(model_dir, users_csv, tmp_path):
    scorer = UpliftScorer.load(model_dir)
    with pytest.raises(ValueError, match="rule 'top_k' ranks users for one campaign"):
        scorer.policy(PolicyConfig(rule="top_k"))
    with pytest.raises(ValueError, match=r"policy arms names \['sms'\], which are not campaign arms"):
        scorer.policy(PolicyConfig(arms={"sms": {"margin": 0.5}}))
    nobody = tmp_path / "nobody.csv"
    score_file(model_dir, users_csv, nobody, progress=False, policy=PolicyConfig(rule="nobody"))
    assert set(pd.read_csv(nobody)["best_arm"]) == {"none"}
    cautious = tmp_path / "cautious.csv"
    score_file(model_dir, users_csv, cautious, progress=False,
               policy=PolicyConfig(cost_per_contact=1.0, margin=0.3, rule="bayes_prob", prob_threshold=0.9))
    # a surer profit is asked for: no more users get an arm than by expected profit (same costs)
    plain = tmp_path / "plain.csv"
    score_file(model_dir, users_csv, plain, progress=False, policy=PolicyConfig(cost_per_contact=1.0, margin=0.3))
    assert (pd.read_csv(cautious)["best_arm"] != "none").sum() <= (pd.read_csv(plain)["best_arm"] != "none").sum()


def test_http_and_lambda_answer_as_the_batch_file(model_dir, users_csv, tmp_path, monkeypatch):
    out = tmp_path / "scored.csv"
    score_file(model_dir, users_csv, out, progress=False, policy=POLICY)
    batch = pd.read_csv(out, dtype={"customer_id": str})
    sent = pd.read_csv(users_csv, dtype={"customer_id": str, "channel": str})
    payload = {"instances": sent.to_dict(orient="records")}
    server = Server(model_dir, "--cost-per-contact", "1", "--margin", "0.3", "--policy-arms", json.dumps(COSTS))
    try:
        server.wait_ready()
        status, body, _, _ = server.request("POST", "/predict", payload)
        _, meta, _, _ = server.request("GET", "/metadata")
        _, doc, _, _ = server.request("GET", "/openapi.json")
    finally:
        server.stop()
    assert status == 200, body
    preds = body["predictions"]
    assert list(preds[0]) == ["id", *OUTPUTS, "best_arm"]
    for col in OUTPUTS:
        assert [FLOAT_FORMAT % p[col] for p in preds] == [FLOAT_FORMAT % v for v in batch[col]], col
    assert [p["best_arm"] for p in preds] == batch["best_arm"].tolist()
    assert meta["outputs"] == [*OUTPUTS, "best_arm"]
    assert meta["arms"] == {"control": "none", "campaigns": [
        {"level": "email_a", "suffix": "email_a", "cost_per_contact": 1.0, "margin": 0.3},
        {"level": "email_b", "suffix": "email_b", "cost_per_contact": 2.0, "margin": 0.3}]}
    prediction = doc["components"]["schemas"]["Prediction"]
    assert prediction["required"] == ["id", *OUTPUTS, "best_arm"]
    assert prediction["properties"]["best_arm"]["enum"] == ["none", *ARMS]

    # Lambda reads the same settings from the environment
    from bayeslift.serving import lambda_handler as lh

    monkeypatch.setenv("BAYESLIFT_MODEL_DIR", str(model_dir))
    for var, value in {"BAYESLIFT_COST_PER_CONTACT": "1", "BAYESLIFT_MARGIN": "0.3",
                       "BAYESLIFT_POLICY_ARMS": json.dumps(COSTS)}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("BAYESLIFT_API_TOKEN", raising=False)
    lh.reset_service()
    event = {"version": "2.0", "rawPath": "/predict", "headers": {"content-type": "application/json"},
             "requestContext": {"http": {"method": "POST", "path": "/predict"}},
             "body": base64.b64encode(json.dumps(payload).encode()).decode(), "isBase64Encoded": True}
    try:
        answer = lh.lambda_handler(event, None)
    finally:
        lh.reset_service()
    assert answer["statusCode"] == 200, answer
    lambda_preds = json.loads(answer["body"])["predictions"]
    assert [p["best_arm"] for p in lambda_preds] == batch["best_arm"].tolist()
    assert [FLOAT_FORMAT % p["uplift_email_b"] for p in lambda_preds] == [FLOAT_FORMAT % v for v in batch["uplift_email_b"]]


def test_a_budget_is_shared_by_the_users_of_a_scored_file(model_dir, users_csv, tmp_path):
    import subprocess
    import sys

    from conftest import PROCESS_ENV

    scored = tmp_path / "scored.csv"
    score_file(model_dir, users_csv, scored, progress=False, policy=POLICY)
    frame = pd.read_csv(scored, dtype={"customer_id": str})
    profit = np.column_stack([0.3 * frame["uplift_email_a"] - 1.0, 0.3 * frame["uplift_email_b"] - 2.0])
    n_best = int((frame["best_arm"] != "none").sum())
    cap = n_best // 2
    out = tmp_path / "allocated.csv"
    cmd = [sys.executable, "-m", "bayeslift.cli", "allocate", "--model", str(model_dir), "--input", str(scored),
           "--output", str(out), "--max-contacts", str(cap), "--cost-per-contact", "1", "--margin", "0.3",
           "--policy-arms", json.dumps(COSTS)]
    proc = subprocess.run(cmd, env=PROCESS_ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    allocated = pd.read_csv(out, dtype={"customer_id": str})
    pd.testing.assert_frame_equal(allocated.drop(columns="budget_arm"), frame)
    chosen = allocated["budget_arm"].map({"none": 0, "email_a": 1, "email_b": 2}).to_numpy()
    assert (chosen > 0).sum() == cap
    got = profit[np.arange(len(chosen)), np.maximum(chosen - 1, 0)][chosen > 0]
    assert (got > 0).all()
    # with every contact worth the same slot, the cap goes to the users of the highest best-arm profit
    best = profit.max(axis=1)
    assert got.sum() == pytest.approx(np.sort(best[best > 0])[::-1][:cap].sum())
    # a budget that pays for everyone gives best_arm itself
    from bayeslift.allocate import allocate_file

    facts = allocate_file(model_dir, scored, tmp_path / "all.csv", POLICY, max_spend=1e9)
    assert pd.read_csv(tmp_path / "all.csv")["budget_arm"].tolist() == frame["best_arm"].tolist()
    assert facts["contacts"]["none"] == int((frame["best_arm"] == "none").sum())
    with pytest.raises(ValueError, match="give one budget"):
        allocate_file(model_dir, scored, tmp_path / "x.csv", POLICY)
    assert not (tmp_path / "x.csv").exists()
