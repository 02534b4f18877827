"""The OpenAPI 3.1 document of the service, written as a dict from the model's feature spec."""
from __future__ import annotations

from ..data import FeatureSpec
from ..scoring import PREDICTION_COLUMNS

ERROR_CODES = {
    "400": "Malformed JSON",
    "401": "Missing or wrong bearer token (only when BAYESLIFT_API_TOKEN is set)",
    "404": "Unknown path",
    "405": "Wrong method",
    "413": "Body over the size limit, or more instances than allowed",
    "422": "Invalid instances: missing field, wrong type, NaN/Infinity, unknown category, empty list",
}


def build_openapi(spec: FeatureSpec, model: dict, config) -> dict:
    instance = {
        "type": "object",
        "required": [spec.id, *spec.features],
        "properties": {
            spec.id: {"type": ["string", "integer"], "description": "echoed back as sent"},
            **{c: {"type": "number", **({"minimum": 0} if c in spec.log1p else {})} for c in spec.numeric},
            **{c: {"type": "string", "enum": list(spec.levels.get(c, []))} for c in spec.categorical},
        },
        "additionalProperties": True,
    }
    prediction = {
        "type": "object",
        "required": ["id", *PREDICTION_COLUMNS, "treat"],
        "properties": {
            "id": {"type": ["string", "integer"]},
            **{c: {"type": "number"} for c in PREDICTION_COLUMNS},
            "treat": {"type": "boolean"},
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
                              **errors("400", "401", "405", "413", "422")},
            }},
            "/health": {"get": {"summary": "Liveness; never needs a token",
                                "responses": {**ok("Up", {"type": "object"}), **errors("405")}}},
            "/metadata": {"get": {"summary": "Features, types, allowed categories, model version, limits",
                                  "responses": {**ok("Metadata", {"type": "object"}), **errors("401", "405")}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {**ok("OpenAPI document", {"type": "object"}),
                                                    **errors("401", "405")}}},
        },
        "components": {
            "schemas": {"Instance": instance, "Prediction": prediction, "Model": model_schema, "Error": error},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
