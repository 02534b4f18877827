"""Pipeline config files and their schema, checked with short messages a user can act on.

Snakemake's own loader says only "Config file is not valid JSON or YAML" for a syntax error, and its
``validate`` prints the whole schema after a one-line problem. Here a syntax error names the file, line
and column; a schema error names the key path and the problem, one line each.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

MAX_PROBLEMS = 10  # schema problems listed; the first line gives the full count
MAX_VALUE_CHARS = 80  # a value quoted in a message is cut to this many characters


class ConfigError(ValueError):
    """A config file that cannot be read, or a config that breaks the schema."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: YAML would silently keep the later value."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]}); "
                                  "the later value would silently replace the earlier")
            seen[key] = line
        return super().construct_mapping(node, deep)


def _refuse_duplicate_json_keys(pairs):
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"duplicate key(s) {dupes}; the later value would silently replace the earlier")
    return dict(pairs)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """'YAML syntax error at line L, column C: <problem>', with where the unclosed construct started."""
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    message = f"YAML syntax error{where}: {exc.problem or exc.context or 'unreadable YAML'}"
    if exc.context and exc.context_mark and exc.problem_mark:
        start = exc.context_mark
        message += f" ({exc.context}, started at line {start.line + 1}, column {start.column + 1})"
    if "\\t" in (exc.problem or ""):  # PyYAML names a tab as '\t'
        message += "; indent with spaces, not tabs"
    return message


def load_config_file(path) -> dict:
    """A JSON or YAML config file as a dict (as Snakemake reads it: JSON first), or :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc})") from None
    try:
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicate_json_keys)
        except json.JSONDecodeError:  # not JSON: YAML, as Snakemake tries next
            data = yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:
        raise ConfigError(f"config file {path}: nested too deeply to read") from None
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"config file {path}: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: YAML syntax error: {exc}") from None
    if data is None:  # Snakemake refuses such a file too
        raise ConfigError(f"config file {path}: holds no keys; leave it out or give at least one key")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must hold keys at the top level (a mapping), "
                          f"got a {type(data).__name__}")
    return data


def load_schema(path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _validator_with_defaults(schema: dict):
    """The schema's validator that also fills in each ``default`` (jsonschema's FAQ recipe, as Snakemake's
    ``validate(set_default=True)``), but only into mappings: a wrong-typed section is reported, not crashed on."""
    from jsonschema import validators

    base = validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, prop["default"])
        yield from check_properties(validator, properties, instance, subschema)

    return validators.extend(base, {"properties": properties_with_defaults})(schema)


def _key_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def _plain(subschema: dict) -> str:
    """A oneOf/anyOf alternative as compact JSON without its prose."""
    return json.dumps({k: v for k, v in subschema.items() if k not in ("description", "default")},
                      separators=(", ", ": "))


def _problems(error) -> list[tuple[str, str]]:
    """(key path, problem) pairs of one jsonschema error."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        out = []
        for key in sorted(set(error.instance) - set(allowed), key=str):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            out.append((_key_path([*path, key]), f"unknown key ({hint}allowed: {', '.join(allowed)})"))
        return out
    if error.validator in ("oneOf", "anyOf"):
        options = " or ".join(_plain(s) for s in error.validator_value)
        return [(_key_path(path), f"{_short(error.instance)} matches none of: {options}")]
    message = error.message
    if len(message) > 3 * MAX_VALUE_CHARS:  # jsonschema quotes the whole instance; say it briefly
        message = f"{_short(error.instance)} fails '{error.validator}': {_short(error.validator_value)}"
    return [(_key_path(path), message)]


def validate_config(config: dict, schema: dict, set_default: bool = True) -> dict:
    """Check ``config`` against ``schema`` (filling defaults when asked); :class:`ConfigError` lists each problem
    as ``config: <key path>: <problem>``."""
    from jsonschema import validators

    validator = _validator_with_defaults(schema) if set_default else validators.validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        problems += _problems(error)
    if problems:
        lines = [f"config: {path}: {problem}" for path, problem in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problem(s)")
        raise ConfigError("\n".join(lines))
    return config


def merge_config(base: dict, override: dict) -> dict:
    """Snakemake's merge of a later config file into an earlier one: mappings merge, anything else replaces."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value
    return base
