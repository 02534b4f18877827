"""The service's settings and their allowed ranges, checked wherever they come from (flags, environment, code).

A setting outside its range is refused at start with a :class:`SettingError` naming the flag or variable
and the range, rather than giving a service that answers 413 to everything or never times a client out.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from ..policy import PolicyConfig

TOKEN_ENV = "BAYESLIFT_API_TOKEN"


class SettingError(ValueError):
    """A serving or scoring setting outside its allowed range."""


@dataclass(frozen=True)
class Setting:
    """One numeric setting: its flag, its environment variable (if any), type and inclusive range."""

    flag: str
    kind: type  # int or float
    low: float
    high: float | None = None
    env: str | None = None

    def describe(self) -> str:
        noun, show = ("an integer", int) if self.kind is int else ("a number", lambda x: f"{x:g}")
        return f"{noun} >= {show(self.low)}" if self.high is None else \
            f"{noun} from {show(self.low)} to {show(self.high)}"

    def check(self, value, source: str | None = None):
        """``value`` (text or a number) as ``kind`` within the range, or :class:`SettingError` naming ``source``
        (the flag when None; "" when the caller names it, as argparse does)."""
        try:
            if isinstance(value, bool) or (self.kind is int and isinstance(value, float)):
                raise ValueError
            number = self.kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not math.isfinite(number) or number < self.low or \
                (self.high is not None and number > self.high):
            name = self.flag if source is None else source
            raise SettingError(f"{name} must be {self.describe()}, got {str(value)[:40]!r}".lstrip())
        return number

    def from_env(self, environ: Mapping[str, str]):
        """The variable's value checked, or None when it is unset or empty."""
        raw = environ.get(self.env, "") if self.env else ""
        return self.check(raw, self.env) if raw.strip() else None


DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_INSTANCES = 10_000
DEFAULT_BODY_TIMEOUT_S = 30.0

SETTINGS = {
    # a one-user request is ~110 bytes: below 1 KiB even small batches would be refused
    "max_body_bytes": Setting("--max-body-bytes", int, 1024, 1 << 30, env="BAYESLIFT_MAX_BODY_BYTES"),
    "max_instances": Setting("--max-instances", int, 1, 10_000_000, env="BAYESLIFT_MAX_INSTANCES"),
    # how long a client may take to send its request headers, and then its body (one deadline each); a
    # stalled one would hold its connection forever
    "body_timeout_s": Setting("--body-timeout-s", float, 0.01, 3600, env="BAYESLIFT_BODY_TIMEOUT_S"),
    "port": Setting("--port", int, 1, 65535),
    "workers": Setting("--workers", int, 1, 64),  # each worker loads its own copy of the model
    "chunk_size": Setting("--chunk-size", int, 1),
}


#: The targeting policy's variables (the HTTP server's flags --rule, --cost-per-contact, ... win over them).
POLICY_ENV = {"rule": "BAYESLIFT_POLICY_RULE", "cost_per_contact": "BAYESLIFT_COST_PER_CONTACT",
              "margin": "BAYESLIFT_MARGIN", "top_k": "BAYESLIFT_TOP_K", "prob_threshold": "BAYESLIFT_PROB_THRESHOLD",
              "arms": "BAYESLIFT_POLICY_ARMS"}


def policy_value(name: str, text: str, source: str):
    """One policy value from text, checked by PolicyConfig's own rule, or a :class:`SettingError` naming ``source``."""
    from ..policy import PolicyConfig

    try:
        value = text.strip() if name == "rule" else json.loads(text) if name == "arms" else float(text)
        return getattr(PolicyConfig(**{name: value}), name)
    except ValueError as exc:  # json.JSONDecodeError is one
        reason = (str(exc) if "policy" in str(exc) else f"must be JSON {{level: {{cost_per_contact, margin}}}}, got "
                  f"{text[:40]!r}" if name == "arms" else f"must be a number, got {text[:40]!r}")
        raise SettingError(f"{source}: {reason}".lstrip(": ")) from None


def policy_from_env(environ: Mapping[str, str], given: Mapping | None = None) -> "PolicyConfig":
    """Defaults, then the BAYESLIFT_* policy variables (unset or empty: the default), then ``given`` (flags;
    None = not given). A bad variable is a :class:`SettingError` naming it."""
    from ..policy import PolicyConfig

    values = {name: policy_value(name, environ[var], var) for name, var in POLICY_ENV.items()
              if environ.get(var, "").strip()}
    values.update({k: v for k, v in (given or {}).items() if v is not None})
    return PolicyConfig(**values)


def _default_policy() -> "PolicyConfig":
    from ..policy import PolicyConfig  # scipy, which policy imports, is slow to load: only when serving

    return PolicyConfig()


@dataclass
class ServingConfig:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_instances: int = DEFAULT_MAX_INSTANCES
    api_token: str | None = None  # when set, every route but /health needs "Authorization: Bearer <token>"
    policy: PolicyConfig = field(default_factory=_default_policy)
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S

    def __post_init__(self):
        for name in ("max_body_bytes", "max_instances", "body_timeout_s"):
            setattr(self, name, SETTINGS[name].check(getattr(self, name), f"serving setting {name}"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, policy: Mapping | None = None,
                 **overrides) -> "ServingConfig":
        """Defaults, then BAYESLIFT_MAX_BODY_BYTES / _MAX_INSTANCES / _BODY_TIMEOUT_S / _API_TOKEN and the policy
        variables (``POLICY_ENV``), then overrides and ``policy``'s values (None = not given). A variable
        outside its range is a :class:`SettingError` naming it."""
        values = {name: SETTINGS[name].from_env(environ) for name in ("max_body_bytes", "max_instances",
                                                                      "body_timeout_s")}
        values["api_token"] = environ.get(TOKEN_ENV) or None
        values["policy"] = policy_from_env(environ, policy)
        values.update(overrides)
        return cls(**{k: v for k, v in values.items() if v is not None})
