"""The pipeline's config as layers: the defaults, named presets, then the user's files and ``--config``.

config/config.yaml holds every default value (the schema holds types and meanings only). A preset is a named
bundle (config/presets/<name>.yaml) applied over the defaults and under the user's own keys, so
``presets: [accurate]`` in a user's file changes only what the user did not set. Keys renamed when the
``model`` section was grouped by meaning still work for one release (0.2), each with a message naming the
file and the new key. The rules between keys are checked here, before any job starts.
"""
from __future__ import annotations

import copy
from pathlib import Path

from .config_check import ConfigError, load_config_file, load_schema, merge_config, validate_config

_PACKAGED_CONFIG = Path(__file__).with_name("config")
#: config.yaml (every default), config.schema.yaml and presets/: the checkout's config/, which pyproject.toml
#: maps into the package as bayeslift/config (an installed wheel has it there; a source tree does not)
CONFIG_DIR = _PACKAGED_CONFIG if (_PACKAGED_CONFIG / "config.yaml").is_file() else Path(__file__).resolve().parents[2] / "config"

#: the release that drops the old key names
OLD_KEYS_UNTIL = "0.3"

#: old key path -> new key path (model.flexible and model.auto become model.effect.shape: see _upgrade_shape)
RENAMED = {
    **{("model", k): ("model", "inference", k) for k in ("chains", "iter", "seed", "adapt_delta", "algorithm",
                                                           "fit_subsample")},
    **{("model", k): ("model", "effect", k) for k in ("shrinkage", "shrinkage_scale", "spline_df", "propensity")},
    ("model", "auto_combine"): ("model", "combine"),
    ("model", "calibrate_intervals"): ("model", "intervals", "calibrate"),
    ("model", "calibration_replicates"): ("model", "intervals", "replicates"),
    **{("diagnostics", k): ("model", "checks", k) for k in ("rhat_max", "ess_bulk_min", "ess_tail_min",
                                                             "divergences_max", "pareto_k_max", "on_fail",
                                                             "model_checks")},
}


def _dotted(path) -> str:
    return ".".join(path)


def _pop(layer: dict, path):
    """Remove and return the value at ``path`` (a missing key: ``KeyError``); emptied sections are removed."""
    section = layer
    for key in path[:-1]:
        section = section[key]
        if not isinstance(section, dict):
            raise KeyError(path)
    value = section.pop(path[-1])
    if not section and len(path) > 1:
        _pop(layer, path[:-1])
    return value


def _has(layer: dict, path) -> bool:
    section = layer
    for key in path:
        if not isinstance(section, dict) or key not in section:
            return False
        section = section[key]
    return True


def _put(layer: dict, path, value) -> None:
    section = layer
    for key in path[:-1]:
        section = section.setdefault(key, {})
    section[path[-1]] = value


def _upgrade_shape(layer: dict, source: str, notes: list) -> None:
    """model.flexible / model.auto (two switches, one of which made the other fit the same model twice)
    -> model.effect.shape."""
    model = layer.get("model")
    if not isinstance(model, dict) or not ({"flexible", "auto"} & set(model)):
        return
    auto, flexible = model.pop("auto", None), model.pop("flexible", None)
    shape = "auto" if auto else "flexible" if flexible else "linear"
    old = " and ".join(f"model.{k}: {str(v).lower()}" for k, v in (("auto", auto), ("flexible", flexible))
                       if v is not None)
    verb = "are" if " and " in old else "is"
    notes.append(f"{source}: {old} {verb} deprecated: use model.effect.shape: {shape}")
    if not auto and "auto_combine" in model:  # auto_combine did nothing without auto
        notes.append(f"{source}: model.auto_combine had no effect without model.auto; dropped")
        model.pop("auto_combine")
    _put(layer, ("model", "effect", "shape"), shape)


def upgrade_layer(layer: dict, source: str) -> tuple[dict, list[str]]:
    """``layer`` with the keys renamed in 0.2 moved to their new place, and one message per old key."""
    layer = copy.deepcopy(layer)
    notes: list[str] = []
    _upgrade_shape(layer, source, notes)
    for old, new in RENAMED.items():
        if not _has(layer, old):
            continue
        if _has(layer, new):
            raise ConfigError(f"{source}: both {_dotted(old)} (the old name) and {_dotted(new)} are set; keep "
                              f"{_dotted(new)}")
        _put(layer, new, _pop(layer, old))
        notes.append(f"{source}: {_dotted(old)} is deprecated: use {_dotted(new)}")
    if notes:
        notes.append(f"{source}: the old names work until bayeslift {OLD_KEYS_UNTIL} (README, 'Renamed keys')")
    return layer, notes


def _preset_names(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def key_paths(layer: dict, prefix=()) -> set[tuple]:
    """Every leaf key path of ``layer``."""
    out = set()
    for key, value in layer.items():
        path = (*prefix, key)
        out |= key_paths(value, path) if isinstance(value, dict) and value else {path}
    return out


class ResolvedConfig(dict):
    """The merged config; ``notes`` (deprecations, ignored keys) and ``set_by_user`` (leaf key paths that a
    preset or user layer set) ride along."""

    notes: list[str]
    set_by_user: set


def resolve_config(defaults_path, user_paths=(), overrides=None, presets_dir=None) -> ResolvedConfig:
    """The config a run uses: ``defaults_path``, each preset named by ``presets`` (the last layer that names any
    wins), each file of ``user_paths`` in order, then ``overrides`` (``--config``)."""
    defaults_path = Path(defaults_path)
    presets_dir = Path(presets_dir) if presets_dir else defaults_path.parent / "presets"
    notes: list[str] = []
    layers = []
    for path in user_paths:
        layer, more = upgrade_layer(load_config_file(path), f"config file {path}")
        layers.append(layer)
        notes += more
    if overrides:
        layer, more = upgrade_layer(overrides, "--config")
        layers.append(layer)
        notes += more
    config = load_config_file(defaults_path)
    names = config.get("presets")
    for layer in layers:
        if "presets" in layer:
            names = layer["presets"]
    names = _preset_names(names)
    preset_layers = [_load_preset(presets_dir, name) for name in names]
    out = ResolvedConfig(config)
    for layer in [*preset_layers, *layers]:
        merge_config(out, copy.deepcopy(layer))
    out["presets"] = names
    out.notes = notes
    out.set_by_user = set().union(*(key_paths(layer) for layer in [*preset_layers, *layers]))
    return out


def _load_preset(presets_dir: Path, name) -> dict:
    available = sorted(p.stem for p in presets_dir.glob("*.yaml"))
    if not isinstance(name, str) or name not in available:
        raise ConfigError(f"config: presets: unknown preset {name!r} (available: {', '.join(available)}; "
                          f"each is a file in {presets_dir})")
    layer = load_config_file(presets_dir / f"{name}.yaml")
    if "presets" in layer:
        raise ConfigError(f"preset {presets_dir / name}.yaml: a preset cannot name other presets")
    return layer


def rule_problems(config: dict) -> list[str]:
    """The rules between keys that a schema of single keys cannot state, one message per broken rule."""
    problems = []
    data, columns, model = config["data"], config["columns"], config["model"]
    effect = model["effect"]
    for key in ("train", "score"):
        if not data.get(key):
            problems.append(f"config: data.{key}: not set: name your {'campaign history CSV' if key == 'train' else 'file of users to score'} "
                            "(for the demo: presets: [demo], or --config presets=demo)")
    if not columns["numeric"] and not columns["categorical"]:
        problems.append("config: columns.numeric, columns.categorical: both empty: name the feature columns "
                        "(for the demo: presets: [demo])")
    not_numeric = [c for c in columns["log1p"] if c not in columns["numeric"]]
    if not_numeric:
        problems.append(f"config: columns.log1p: {not_numeric} not in columns.numeric")
    if model["combine"] != "pick" and effect["shape"] != "auto":
        problems.append(f"config: model.combine: {model['combine']} mixes candidates, which only "
                        "model.effect.shape: auto fits; set shape: auto, or combine: pick")
    if effect["shrinkage_scale"] is not None and effect["shrinkage"] != "normal":
        problems.append("config: model.effect.shrinkage_scale: is the sd of the normal shrinkage prior; "
                        f"model.effect.shrinkage is {effect['shrinkage']!r}")
    if model["backend"] == "brms":  # shape auto is then one model (flexible_fits): refused only when asked for
        options = effect["shape"] == "flexible" or effect["shrinkage"] != "none" or effect["propensity"]
        if options and columns["outcome_type"] != "spend":
            problems.append("config: model.effect: with backend brms, the shape/shrinkage/propensity options are "
                            f"implemented for outcome_type spend only (not {columns['outcome_type']}); use backend rstanarm")
        if effect["shrinkage"] == "horseshoe" and effect["shape"] == "flexible":
            problems.append("config: model.effect: brms does not allow the horseshoe prior together with smooths "
                            "(shape flexible); use shrinkage normal, shape auto or linear, or backend rstanarm")
    if model["backend"] == "bcf":  # as the R back-end refuses them, but before any job runs
        if effect["shape"] == "flexible":
            problems.append("config: model.effect.shape: flexible adds splines; backend bcf's forests find the "
                            "effect's shape (shape auto or linear: the forests)")
        if model["inference"]["algorithm"] != "sampling":
            problems.append(f"config: model.inference.algorithm: backend bcf samples by MCMC only, not "
                            f"{model['inference']['algorithm']}")
    return problems


def flexible_fits(c: dict) -> bool:
    """Whether the configured back-end fits shape auto's flexible candidate (R ``flexible_fits``): bcf's forests
    find the shape themselves; brms' smooths are for spend, not beside the horseshoe."""
    backend, effect = c["model"]["backend"], c["model"]["effect"]
    if backend == "bcf":
        return False
    return backend != "brms" or (c["columns"]["outcome_type"] == "spend" and effect["shrinkage"] != "horseshoe")


#: (key path, condition under which it does nothing, why): said when a user or preset set the key
IGNORED = [
    (("model", "inference", k), lambda c: c["model"]["inference"]["algorithm"] != "sampling",
     "variational inference (model.inference.algorithm) runs one job of 1,000 approximate draws")
    for k in ("chains", "iter", "adapt_delta")
] + [
    (("model", "effect", "spline_df"), lambda c: c["model"]["backend"] == "brms",
     "brms' s() smooths are penalized, with basis dimension 5"),
    (("model", "effect", "spline_df"), lambda c: c["model"]["effect"]["shape"] == "linear",
     "only the flexible model (effect.shape flexible or auto) has splines"),
    (("model", "effect", "shape_subsample"),
     lambda c: c["model"]["effect"]["shape"] != "auto" or c["model"]["combine"] != "pick" or not flexible_fits(c),
     "only shape auto with combine pick chooses between two shapes"),
] + [
    (("model", "effect", k), lambda c, backend=backend: c["model"]["backend"] == backend, why)
    for backend, why in (("stan", "backend stan learns the effect terms' shrinkage scale from the data"),
                         ("bcf", "backend bcf's forests regularize the effect with their own priors"))
    for k in ("shrinkage", "shrinkage_scale")
] + [
    (("model", *key), lambda c: c["model"]["effect"]["shape"] == "auto" and not flexible_fits(c),
     "shape auto is one model here: the back-end has no flexible model for this outcome and prior (bcf: its "
     "forests find the shape; brms: smooths for spend, without the horseshoe)")
    for key in (("effect", "shape"), ("combine",))
] + [
    (("model", "intervals", "replicates"), lambda c: not c["model"]["intervals"]["calibrate"],
     "model.intervals.calibrate is false"),
    (("model", "checks", "extend_minutes"), lambda c: c["model"]["checks"]["on_fail"] != "stop",
     "only a fit that would stop (model.checks.on_fail: stop) is extended"),
]


def ignored_keys(config: dict, set_by_user) -> list[str]:
    """A note per key a user or preset set that the rest of the config makes do nothing."""
    return [f"config: {_dotted(path)} is ignored: {why}" for path, idle, why in IGNORED
            if path in set_by_user and idle(config)]


def checked_config(defaults_path, schema_path, user_paths=(), overrides=None) -> ResolvedConfig:
    """:func:`resolve_config`, then the schema and the rules between keys: the config a run uses, or one
    :class:`ConfigError` listing every problem. ``notes`` gains the keys that do nothing."""
    config = resolve_config(defaults_path, user_paths, overrides)
    validate_config(config, load_schema(schema_path), set_default=False)
    problems = rule_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))
    config.notes += ignored_keys(config, config.set_by_user)
    return config
