"""Online scoring: an HTTP service (uvicorn, ASGI) and an AWS Lambda handler sharing one request handler.

Names load on first use, so ``bayeslift.serving.settings`` (the CLI's option checks) comes without torch.
"""
from importlib import import_module

_HOMES = {"PredictionService": "core", "Response": "core", "error_response": "core", "render": "core",
          "ServingConfig": "settings", "SettingError": "settings", "RequestError": "validation",
          "ValidatedInstances": "validation", "parse_body": "validation", "validate_instances": "validation"}
__all__ = list(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
