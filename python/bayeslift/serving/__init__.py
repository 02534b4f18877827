"""Online scoring: an HTTP service (uvicorn, ASGI) and an AWS Lambda handler sharing one request handler."""
from .core import PredictionService, Response, ServingConfig, render
from .validation import RequestError, ValidatedInstances, parse_body, validate_instances

__all__ = ["PredictionService", "Response", "ServingConfig", "render", "RequestError", "ValidatedInstances",
           "parse_body", "validate_instances"]
