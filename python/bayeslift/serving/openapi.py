"""The OpenAPI 3.1 document of the service, written as a dict from the model's feature spec."""
from __future__ import annotations

from ..arms import arm_levels
from ..data import FeatureSpec
from ..scoring import PREDICTION_COLUMNS
from .validation import feature_bounds

ERROR_CODES = {
    "400": "Malformed JSON",
    "401": "Missing or wrong bearer token (only when BAYESLIFT_API_TOKEN is set)",
    "404": "Unknown path",
    "405": "Wrong method",
    "408": "Body not received within the server's body timeout; the connection is closed",
    "413": "Body over the size limit, or more instances than allowed",
    "422": "Invalid instances: missing field, wrong type, NaN/Infinity, unknown category, empty list, "
           "a value beyond the feature's minimum/maximum (the training range widened), no finite prediction",
}


def build_openapi(spec: FeatureSpec, model: dict, config, columns=PREDICTION_COLUMNS, decision: str = "treat") -> dict:
    """The document; ``columns`` and ``decision`` the scorer's prediction and decision columns (several campaign
    arms: per-arm columns and ``best_arm``, the chosen arm's level)."""
    bounds = feature_bounds(spec)

    def number(col):
        limits = {k: v for k, v in bounds.get(col, {}).items() if k in ("minimum", "maximum")}
        return {"type": "number", **({"minimum": 0} if col in spec.log1p else {}), **limits}

    instance = {
        "type": "object",
        "required": [spec.id, *spec.features],
        "properties": {
            spec.id: {"type": ["string", "integer"], "description": "echoed back as sent"},
            **{c: number(c) for c in spec.numeric},
            **{c: {"type": "string", "enum": list(spec.levels.get(c, []))} for c in spec.categorical},
        },
        "additionalProperties": True,
    }
    choice = ({"type": "boolean"} if decision == "treat" else
              {"type": "string", "enum": arm_levels(spec), "description": "the arm of highest expected profit "
               "under the policy, or the control level"})
    prediction = {
        "type": "object",
        "required": ["id", *columns, decision],
        "properties": {
            "id": {"type": ["string", "integer"]},
            **{c: {"type": "number"} for c in columns},
            decision: choice,
        },
    }
    model_schema = {"type": "object", "properties": {"version": {"type": ["string", "null"]},
                                                      "sha256": {"type": "string"}}}
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"index": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]},
                                   "problem": {"type": "string"}},
                }},
            },
        }},
    }

    def errors(*codes):
        return {c: {"description": ERROR_CODES[c],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for c in codes}

    def get_and_head(summary, answer, *codes):
        head = {"200": {"description": "The GET answer's status and headers, no body"}}
        return {"get": {"summary": summary, "responses": {**answer, **errors(*codes)}},
                "head": {"summary": f"{summary} (headers only)", "responses": {**head, **errors(*codes)}}}

    def ok(description, schema):
        return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "bayeslift uplift service", "version": str(model.get("version")),
                 "description": f"Per-customer spend uplift from the surrogate (model sha256 {model['sha256']})."},
        "paths": {
            "/predict": {"post": {
                "summary": "Score 1 to N users",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["instances"],
                    "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": config.max_instances,
                                                 "items": {"$ref": "#/components/schemas/Instance"}}},
                }}}},
                "responses": {**ok("Predictions in the order sent", {
                    "type": "object", "required": ["predictions", "model"],
                    "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                                   "model": {"$ref": "#/components/schemas/Model"}}}),
                              **errors("400", "401", "405", "408", "413", "422")},
            }},
            "/health": get_and_head("Liveness; never needs a token", ok("Up", {"type": "object"}), "405"),
            "/metadata": get_and_head("Features, types, allowed categories and ranges, model version, limits",
                                      ok("Metadata", {"type": "object"}), "401", "405"),
            "/openapi.json": get_and_head("This document", ok("OpenAPI document", {"type": "object"}),
                                          "401", "405"),
        },
        "components": {
            "schemas": {"Instance": instance, "Prediction": prediction, "Model": model_schema, "Error": error},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
