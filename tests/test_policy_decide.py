"""One targeting decision (`policy.decide`) for batch scoring, HTTP, Lambda and evaluation, under every rule;
top_k as a threshold learned on the holdout, stored in the manifest and verified on load."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from bayeslift import policy as pol
from bayeslift.manifest import ModelArtifactError
from serving_constants import EQUALITY_USERS
from test_serving import FIELDS, Server

# Each rule as a server is started: flags for some, the BAYESLIFT_* variables for others (both paths count).
COST, MARGIN = 0.5, 0.3
RULES = {
    "nobody": (["--rule", "nobody"], {}),
    "everybody": ([], {"BAYESLIFT_POLICY_RULE": "everybody"}),
    "top_k": (["--rule", "top_k", "--top-k", "0.3"], {}),
    "expected_profit": (["--rule", "expected_profit"], {}),
    "bayes_prob": ([], {"BAYESLIFT_POLICY_RULE": "bayes_prob", "BAYESLIFT_PROB_THRESHOLD": "0.6"}),
}
POLICIES = {"nobody": {}, "everybody": {}, "top_k": {"top_k": 0.3}, "expected_profit": {},
            "bayes_prob": {"prob_threshold": 0.6}}


def policy_of(rule: str) -> pol.PolicyConfig:
    return pol.PolicyConfig(cost_per_contact=COST, margin=MARGIN, rule=rule, **POLICIES[rule])


@pytest.fixture(scope="module")
def rule_servers(truth_surrogate_dir):
    """One real `bayeslift serve` per rule, started together (each imports torch)."""
    economics = ["--cost-per-contact", str(COST)]
    started = {rule: Server(truth_surrogate_dir, *economics, *flags,
                            env={"BAYESLIFT_MARGIN": str(MARGIN), **env}) for rule, (flags, env) in RULES.items()}
    try:
        yield {rule: server.wait_ready() for rule, server in started.items()}
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def users_csv(tmp_path_factory):
    from bayeslift.simulate import simulate_new_users

    frame, _ = simulate_new_users(EQUALITY_USERS, seed=23)
    path = tmp_path_factory.mktemp("decide") / "users.csv"
    frame.to_csv(path, index=False)
    return path


def http_payload(csv) -> list[dict]:
    sent = pd.read_csv(csv, dtype={"customer_id": str, "channel": str})  # the values batch scoring reads
    return [{**u, "customer_id": str(u["customer_id"])} for u in sent[FIELDS].to_dict(orient="records")]


@pytest.mark.parametrize("rule", list(RULES))
def test_batch_and_http_decide_alike(rule, rule_servers, truth_surrogate_dir, users_csv, tmp_path):
    from bayeslift.scoring import score_file

    score_file(truth_surrogate_dir, users_csv, tmp_path / "scored.csv", progress=False, policy=policy_of(rule),
               chunk_size=7)  # chunks of 7 users: a decision must not depend on the users scored beside it
    batch = pd.read_csv(tmp_path / "scored.csv", dtype={"customer_id": str})
    server = rule_servers[rule]
    status, body, _, _ = server.request("POST", "/predict", {"instances": http_payload(users_csv)})
    assert status == 200
    http_treat = [int(p["treat"]) for p in body["predictions"]]
    assert http_treat == batch["treat"].tolist()
    share = batch["treat"].mean()
    expected_share = {"nobody": (0, 0), "everybody": (1, 1)}.get(rule, (0.05, 0.95))
    assert expected_share[0] <= share <= expected_share[1], share  # the rules that choose do choose
    meta = server.request("GET", "/metadata")[1]["policy"]
    assert (meta["rule"], meta["cost_per_contact"], meta["margin"]) == (rule, COST, MARGIN)
    if rule == "top_k":
        # one user alone gets the decision it got among all: top_k is a stored threshold, not a ranking
        alone = [server.request("POST", "/predict", {"instances": [u]})[1]["predictions"][0]["treat"]
                 for u in http_payload(users_csv)[:8]]
        assert [int(t) for t in alone] == http_treat[:8]
        stored = json.loads((truth_surrogate_dir / "manifest.json").read_text())["targeting"]["uplift_quantiles"]
        assert meta["top_k_threshold"] == pol.top_k_threshold(stored, 0.3)
        assert batch["treat"].tolist() == (batch["uplift"] >= meta["top_k_threshold"]).astype(int).tolist()
    if rule == "bayes_prob":
        prob = pol.prob_profit_from_quantiles(batch["uplift"], batch["uplift_lower"], batch["uplift_upper"],
                                              MARGIN, COST)
        assert batch["treat"].tolist() == (prob >= 0.6).astype(int).tolist()


def test_lambda_decides_as_batch(truth_surrogate_dir, users_csv, tmp_path, monkeypatch):
    from bayeslift.scoring import score_file
    from bayeslift.serving import lambda_handler as lh

    for var, value in {"BAYESLIFT_MODEL_DIR": str(truth_surrogate_dir), "BAYESLIFT_POLICY_RULE": "top_k",
                       "BAYESLIFT_TOP_K": "0.3", "BAYESLIFT_COST_PER_CONTACT": str(COST),
                       "BAYESLIFT_MARGIN": str(MARGIN)}.items():
        monkeypatch.setenv(var, value)
    lh.reset_service()
    try:
        answer = lh.lambda_handler({"httpMethod": "POST", "path": "/predict",
                                    "body": json.dumps({"instances": http_payload(users_csv)})})
    finally:
        lh.reset_service()
    assert answer["statusCode"] == 200
    score_file(truth_surrogate_dir, users_csv, tmp_path / "scored.csv", progress=False, policy=policy_of("top_k"))
    batch = pd.read_csv(tmp_path / "scored.csv")
    assert [int(p["treat"]) for p in json.loads(answer["body"])["predictions"]] == batch["treat"].tolist()



def test_cli_score_takes_the_policy_flags(truth_surrogate_dir, users_csv, tmp_path):
    from bayeslift.cli import main
    from bayeslift.scoring import score_file

    args = ["score", "--model", str(truth_surrogate_dir), "--input", str(users_csv), "--quiet"]
    assert main([*args, "--output", str(tmp_path / "plain.csv")]) == 0
    assert "treat" not in pd.read_csv(tmp_path / "plain.csv").columns  # no policy flag, no decision
    assert main([*args, "--output", str(tmp_path / "cli.csv"), "--rule", "top_k", "--top-k", "0.3",
                 "--cost-per-contact", str(COST), "--margin", str(MARGIN)]) == 0
    score_file(truth_surrogate_dir, users_csv, tmp_path / "lib.csv", progress=False, policy=policy_of("top_k"))
    assert pd.read_csv(tmp_path / "cli.csv")["treat"].tolist() == pd.read_csv(tmp_path / "lib.csv")["treat"].tolist()


def test_top_k_threshold_treats_the_top_share_of_the_holdout():
    uplift = np.random.default_rng(5).normal(size=500)
    quantiles = pol.uplift_quantiles(uplift)
    assert len(quantiles) == pol.QUANTILE_POINTS and quantiles == sorted(quantiles)
    for k in (0.1, 0.2, 0.5, 1.0):
        policy = pol.for_model(pol.PolicyConfig(rule="top_k", top_k=k), quantiles)
        treat = np.array([pol.decide({"uplift": [u]}, policy)[0] for u in uplift])  # each user alone
        assert treat.sum() == round(k * len(uplift)), k
        np.testing.assert_array_equal(treat, pol.treat_top_k(uplift, k))  # no ties: the ranking's choice
    with pytest.raises(ValueError, match="learned on the holdout"):
        pol.decide({"uplift": uplift}, pol.PolicyConfig(rule="top_k"))
    with pytest.raises(ValueError, match="stores none"):
        pol.for_model(pol.PolicyConfig(rule="top_k"), None)
    assert pol.for_model(pol.PolicyConfig(rule="bayes_prob"), None).top_k_threshold is None


def test_bayes_prob_exact_or_from_the_interval():
    policy = pol.PolicyConfig(cost_per_contact=1.0, margin=0.5, rule="bayes_prob", prob_threshold=0.7)
    u = np.array([3.0, -1.0, 5.0])
    exact = pol.decide({"uplift": u, "prob_profit": [0.9, 0.1, 0.69]}, policy)
    assert exact.tolist() == [True, False, False]  # prob_profit wins over the point uplift
    interval = pol.decide({"uplift": u, "uplift_lower": u - 0.5, "uplift_upper": u + 0.5}, policy)
    assert interval.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="posterior probability"):
        pol.decide({"uplift": u}, policy)


def test_evaluation_rules_table_uses_decide():
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"a": rng.normal(2, 1, n), "bayesian": rng.normal(2, 1, n),
                          "bayesian_prob_profit": rng.uniform(size=n), "true_uplift": rng.normal(2, 1, n)})
    scores = rng.normal(2, 3, n)
    policy = pol.PolicyConfig(cost_per_contact=0.5, margin=0.3, top_k=0.25, prob_threshold=0.6)
    table = pol.rules_table(frame, ["a", "bayesian"], policy, scores, scores).set_index(["model", "rule"])
    assert table.loc[("a", "top 25%"), "share_treated"] == 0.25
    assert table.loc[("-", "nobody"), "share_treated"] == 0 and table.loc[("-", "everybody"), "share_treated"] == 1
    bayes = (frame["bayesian_prob_profit"] >= 0.6).to_numpy()
    assert table.loc[("bayesian", "P(profit > 0) >= 0.6"), "value_aipw"] == pytest.approx(
        pol.policy_value(bayes, scores, 0.3, 0.5)["value"])
    oracle = 0.3 * frame["true_uplift"] - 0.5 > 0
    assert table.loc[("oracle (true uplift)", "expected profit > 0"), "share_treated"] == oracle.mean()


def _edit_manifest(folder, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_targeting_entry_is_checked_on_load(truth_surrogate_dir, tmp_path):
    from bayeslift.scoring import UpliftScorer

    bad = tmp_path / "bad"
    shutil.copytree(truth_surrogate_dir, bad)
    _edit_manifest(bad, lambda m: m["targeting"].update(uplift_quantiles=[3.0, 1.0, float("nan")]))
    with pytest.raises(ModelArtifactError, match="manifest.json: 'targeting' must hold"):
        UpliftScorer.load(bad)
    old = tmp_path / "old"
    shutil.copytree(truth_surrogate_dir, old)
    _edit_manifest(old, lambda m: m.pop("targeting"))
    scorer = UpliftScorer.load(old)  # a model from before: every other rule still decides
    assert scorer.policy(pol.PolicyConfig(rule="expected_profit")).rule == "expected_profit"
    with pytest.raises(ModelArtifactError, match=r"old/manifest.json: policy rule top_k needs .* stores none"):
        scorer.policy(pol.PolicyConfig(rule="top_k"))


def test_bad_policy_settings_name_their_source(capsys):
    from bayeslift.cli import main
    from bayeslift.serving.settings import ServingConfig, SettingError

    with pytest.raises(SettingError, match="BAYESLIFT_POLICY_RULE: policy rule 'best' unknown"):
        ServingConfig.from_env({"BAYESLIFT_POLICY_RULE": "best"})
    with pytest.raises(SettingError, match="BAYESLIFT_TOP_K: must be a number, got 'lots'"):
        ServingConfig.from_env({"BAYESLIFT_TOP_K": "lots"})
    flags_win = ServingConfig.from_env({"BAYESLIFT_TOP_K": "0.5", "BAYESLIFT_POLICY_RULE": "top_k"},
                                       policy={"top_k": 0.1, "rule": None}).policy
    assert (flags_win.rule, flags_win.top_k) == ("top_k", 0.1)
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--rule", "best"])
    assert stop.value.code == 2 and "argument --rule: policy rule 'best' unknown" in capsys.readouterr().err
