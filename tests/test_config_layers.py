"""The config as layers: defaults in one place, presets, renamed keys, and the rules between keys."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from bayeslift.config_check import ConfigError, load_schema, validate_config
from bayeslift.config_layers import checked_config, key_paths, resolve_config, upgrade_layer
from conftest import PROCESS_ENV, REPO, snakemake

DEFAULTS = REPO / "config" / "config.yaml"
SCHEMA = REPO / "config" / "config.schema.yaml"


def schema_leaves(node, prefix=()):
    """Leaf key paths the schema describes (resources' per-rule mapping counts as one leaf)."""
    out = set()
    for key, prop in node.get("properties", {}).items():
        path = (*prefix, key)
        if prop.get("deprecated"):  # an old name kept valid for a release, with no value of its own
            continue
        out |= schema_leaves(prop, path) if prop.get("type") == "object" and "properties" in prop else {path}
    return out


def config_with(tmp_path, layer, *names):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(layer))
    return checked_config(DEFAULTS, SCHEMA, [path, *names])


def test_every_value_lives_in_config_yaml_and_nowhere_else():
    schema = load_schema(SCHEMA)
    defaults = yaml.safe_load(DEFAULTS.read_text())
    assert key_paths(defaults) | {("resources",)} == schema_leaves(schema)
    assert '"default":' not in json.dumps(schema)  # the schema holds types and meanings, no values
    validate_config(defaults, schema, set_default=False)


def test_the_defaults_are_about_no_data_set():
    """A user's own config must not inherit the demo's columns or truth (they live in presets/demo.yaml)."""
    defaults = yaml.safe_load(DEFAULTS.read_text())
    assert defaults["columns"]["numeric"] == defaults["columns"]["log1p"] == []
    assert defaults["evaluation"]["truth"] is None and defaults["data"]["train"] is None
    demo = yaml.safe_load((REPO / "config" / "presets" / "demo.yaml").read_text())
    assert demo["columns"]["log1p"] == ["past_spend"] and demo["evaluation"]["truth"]


def test_presets_apply_over_the_defaults_and_under_the_users_keys(tmp_path):
    config = config_with(tmp_path, {"presets": ["demo", "accurate"], "model": {"effect": {"spline_df": 4}}})
    assert config["presets"] == ["demo", "accurate"]
    assert config["model"]["effect"] == {"shape": "auto", "shape_subsample": 5000, "spline_df": 4, "shrinkage": "normal",
                                         "shrinkage_scale": None, "propensity": False}
    assert config["columns"]["numeric"] == ["past_spend", "recency", "tenure", "is_new"]
    assert config["model"]["inference"]["iter"] == 2000  # untouched keys keep config.yaml's value
    with pytest.raises(ConfigError, match=r"unknown preset 'acurate' \(available: accurate, demo"):
        config_with(tmp_path, {"presets": "acurate"})


def test_a_later_layer_names_the_presets(tmp_path):
    """As with any list, the last layer that names presets wins (--config presets=demo, as make demo runs)."""
    config = resolve_config(DEFAULTS, [REPO / "config" / "test.yaml"], {"presets": "accurate"})
    assert config["presets"] == ["accurate"] and config["data"]["train"] is None


OLD = {"model": {"auto": True, "flexible": True, "chains": 3, "auto_combine": "stack", "spline_df": 5,
                 "calibrate_intervals": True, "calibration_replicates": 2},
       "diagnostics": {"on_fail": "warn", "ess_bulk_min": 50}}


def test_renamed_keys_move_to_their_group_with_a_message():
    layer, notes = upgrade_layer(OLD, "my.yaml")
    assert layer == {"model": {"effect": {"shape": "auto", "spline_df": 5}, "inference": {"chains": 3},
                               "combine": "stack", "intervals": {"calibrate": True, "replicates": 2},
                               "checks": {"on_fail": "warn", "ess_bulk_min": 50}}}
    assert "my.yaml: model.auto: true and model.flexible: true are deprecated: use model.effect.shape: auto" in notes
    assert "my.yaml: diagnostics.on_fail is deprecated: use model.checks.on_fail" in notes
    assert notes[-1].endswith("the old names work until bayeslift 0.3 (README, 'Renamed keys')")
    assert upgrade_layer({"model": {"flexible": True}}, "f")[0] == {"model": {"effect": {"shape": "flexible"}}}
    # auto_combine did nothing without auto: dropped, not turned into a combine the rules refuse
    layer, notes = upgrade_layer({"model": {"auto": False, "auto_combine": "stack"}}, "f")
    assert layer == {"model": {"effect": {"shape": "linear"}}} and any("no effect without model.auto" in n for n in notes)
    with pytest.raises(ConfigError, match="both model.iter .the old name. and model.inference.iter"):
        upgrade_layer({"model": {"iter": 5, "inference": {"iter": 6}}}, "f")


@pytest.mark.parametrize("layer, words", [
    ({"data": {"train": None}}, "data.train: not set"),
    ({"columns": {"numeric": [], "categorical": []}}, "columns.numeric, columns.categorical: both empty"),
    ({"columns": {"log1p": ["recency", "age"]}}, "columns.log1p: ['age'] not in columns.numeric"),
    ({"model": {"combine": "stack", "effect": {"shape": "linear"}}},
     "model.combine: stack mixes candidates, which only model.effect.shape: auto"),
    ({"model": {"effect": {"shrinkage_scale": 0.2}}}, "shrinkage_scale: is the sd of the normal shrinkage prior"),
    ({"model": {"backend": "brms", "effect": {"propensity": True}}, "columns": {"outcome_type": "binary"}},
     "implemented for outcome_type spend only"),
    ({"model": {"backend": "brms", "effect": {"shape": "flexible", "shrinkage": "horseshoe"}}},
     "horseshoe prior together with smooths"),
    ({"model": {"backend": "bcf", "effect": {"shape": "flexible"}}}, "backend bcf's forests find the effect's shape"),
    ({"model": {"backend": "bcf", "inference": {"algorithm": "meanfield"}}}, "backend bcf samples by MCMC only"),
], ids=["no train file", "no features", "log1p not numeric", "combine without auto", "scale without normal",
        "brms options binary", "brms horseshoe smooths", "bcf smooths", "bcf variational"])
def test_rules_between_keys_fail_before_any_job(tmp_path, layer, words):
    with pytest.raises(ConfigError, match="config: ") as err:
        config_with(tmp_path, {"presets": ["demo"], **layer})
    assert words in str(err.value)


def test_keys_that_do_nothing_are_named(tmp_path):
    config = config_with(tmp_path, {"presets": ["demo"], "model": {"inference": {"algorithm": "meanfield", "chains": 4},
                                                                   "effect": {"spline_df": 5, "shape": "linear",
                                                                              "shape_subsample": 1000}}})
    assert "config: model.inference.chains is ignored: variational inference" in " ".join(config.notes)
    assert any("model.effect.spline_df is ignored: only the flexible model" in n for n in config.notes)
    assert any("model.effect.shape_subsample is ignored: only shape auto with combine pick" in n for n in config.notes)
    bcf = config_with(tmp_path, {"presets": ["demo"], "model": {"backend": "bcf", "effect": {"shrinkage": "horseshoe"}}})
    assert "config: model.effect.shrinkage is ignored: backend bcf's forests" in " ".join(bcf.notes)
    # shape auto is one model where the back-end has no flexible one: said, not refused
    for layer in ({"backend": "bcf", "effect": {"shape": "auto"}, "combine": "stack"},
                  {"backend": "brms", "effect": {"shape": "auto", "shrinkage": "horseshoe"}}):
        notes = " ".join(config_with(tmp_path, {"presets": ["demo"], "model": layer}).notes)
        assert "model.effect.shape is ignored: shape auto is one model here" in notes, notes
        assert ("model.combine is ignored: shape auto is one model here" in notes) == ("combine" in layer), notes
    assert not config_with(tmp_path, {"presets": ["demo"], "model": {"backend": "bcf"}}).notes
    assert not config_with(tmp_path, {"presets": ["demo"]}).notes


def test_old_config_file_still_runs_with_messages(tmp_path):
    """An 0.1 config through a real `snakemake -n`: planned as the new keys say, each old key named."""
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(OLD))
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "test.yaml"), str(old))
    assert f"config file {old}: model.chains is deprecated: use model.inference.chains" in proc.stderr
    assert "rule interval_calibration:" in proc.stdout and proc.stdout.count("rule bayesian_chain:") == 3


def test_r_defaults_agree_with_config_yaml():
    """fit_causal_model()'s defaults (what an R user gets) are config/config.yaml's values."""
    script = ("f <- formals(bayeslift::fit_causal_model); cat(jsonlite::toJSON(lapply(f[c('backend', 'shrinkage', "
              "'spline_df', 'propensity', 'iter', 'seed', 'adapt_delta', 'algorithm', 'chains')], eval), auto_unbox = TRUE))")
    proc = subprocess.run(["Rscript", "-e", script], env=PROCESS_ENV, capture_output=True, text=True, check=True)
    r = json.loads(proc.stdout)
    model = yaml.safe_load(DEFAULTS.read_text())["model"]
    effect, inference = model["effect"], model["inference"]
    assert r["shrinkage"] == effect["shrinkage"] and r["spline_df"] == effect["spline_df"]
    assert r["propensity"] == effect["propensity"] and r["backend"] == model["backend"]
    assert {k: r[k] for k in ("iter", "seed", "adapt_delta", "algorithm", "chains")} == \
        {k: inference[k] for k in ("iter", "seed", "adapt_delta", "algorithm", "chains")}
    # what model_candidates() and choose_shape() give a section without effect.shape / shape_subsample
    shape = subprocess.run(["Rscript", "-e", "cat(bayeslift:::DEFAULT_SHAPE, bayeslift:::DEFAULT_SHAPE_SUBSAMPLE)"],
                           env=PROCESS_ENV, capture_output=True, text=True, check=True).stdout.split()
    assert shape == [effect["shape"], str(effect["shape_subsample"])]
