"""The README's table of configuration keys: every leaf key of config/config.schema.yaml in schema order, with its
default from config/config.yaml and its meaning from the schema's ``description``."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from table_format import table
from table_registry import Context, generator

#: the schema giving each key's place and meaning, and the config giving its default (relative to the repository)
SCHEMA = Path("config") / "config.schema.yaml"
CONFIG = Path("config") / "config.yaml"
_ABSENT = object()


def schema_leaves(schema: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """(key path, schema) of every leaf under ``schema["properties"]``, in schema order: a ``type: object``
    section with ``properties`` is descended into; anything else (a free-form object such as ``resources``
    included) is a leaf."""
    leaves = []
    for key, spec in (schema.get("properties") or {}).items():
        path = (*prefix, key)
        if spec.get("type") == "object" and spec.get("properties"):
            leaves += schema_leaves(spec, path)
        else:
            leaves.append((path, spec))
    return leaves


def _lookup(config, path: tuple[str, ...]):
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return _ABSENT
        config = config[key]
    return config


def _cell(text: str, code: bool = False) -> str:
    """``text`` safe inside a Markdown table cell: a ``|`` would end the cell; outside a code span a ``<`` could
    start an HTML tag."""
    text = text.replace("|", "\\|")
    return f"`{text}`" if code else text.replace("<", "&lt;")


def value_text(value) -> str:
    """A config value as YAML users write it: strings bare; numbers, null, true/false, lists and dicts as JSON
    on one line."""
    return value if isinstance(value, str) else json.dumps(value)


@generator("config_keys", "README: every key of config/config.schema.yaml with its default and meaning")
def config_keys_table(ctx: Context) -> str:
    schema = yaml.safe_load((ctx.root / SCHEMA).read_text())
    config = yaml.safe_load((ctx.root / CONFIG).read_text()) or {}
    rows = []
    for path, spec in schema_leaves(schema):
        value = _lookup(config, path)
        if value is _ABSENT:
            value = spec.get("default", _ABSENT)
        rows.append([f"`{'.'.join(path)}`", "–" if value is _ABSENT else _cell(value_text(value), code=True),
                     _cell(spec.get("description") or "–")])
    return table(["key", "default", "meaning"], rows)
