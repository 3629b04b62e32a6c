"""OpenAPI 3.1 description of the log's endpoints (served at /openapi.json). Every JSON body's schema is generated
from its value in `logserver.api`; the paths and parameters are written here."""

from typing import Any

from logserver import api

_ERROR = {"$ref": "#/components/schemas/Error"}
_HEX64 = "^[0-9a-f]{64}$"


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": _ERROR}}} for c in codes}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _int_param(name: str, required: bool) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "integer", "minimum": 0}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "doc-tlog log server", "version": "1"},
    "paths": {
        "/api/v1/entries": {
            "post": {
                "summary": "Submit 1..1000 signed statements; answers once they are durably sequenced",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": api.SubmitRequest.json_schema()}},
                },
                "responses": {  # with "inclusion_proofs": false, a SubmitReceipt (each entry's place, no proof)
                    "200": _json({"oneOf": [api.SubmitResponse.json_schema(), api.SubmitReceipt.json_schema()]}),
                    **_errors(400, 403, 413, 415, 422, 503),
                },
            }
        },
        "/api/v1/proof/inclusion": {
            "get": {
                "summary": "Inclusion proof by index or by leaf hash (hex)",
                "parameters": [
                    _int_param("index", False),
                    _int_param("size", False),
                    {"name": "leaf_hash", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(api.InclusionProof.json_schema()),
                    **_errors(400, 404),
                },
            }
        },
        "/api/v1/proof/consistency": {
            "get": {
                "summary": "Consistency proof between two tree sizes",
                "parameters": [_int_param("old", True), _int_param("new", False)],
                "responses": {
                    "200": _json(api.ConsistencyProof.json_schema()),
                    **_errors(400),
                },
            }
        },
        "/api/v1/documents/{sha256}": {
            "get": {
                "summary": "Every statement about a document, each with its proof bundle, and its status",
                "parameters": [
                    {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string", "pattern": _HEX64}}
                ],
                "responses": {
                    "200": _json(api.DocumentHistory.json_schema()),
                    **_errors(400),
                },
            }
        },
        "/api/v1/documents:lookup": {
            "post": {
                "summary": "Statements (without proofs) and status of 1..1000 documents, in request order",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": api.LookupRequest.json_schema()}},
                },
                "responses": {
                    "200": _json(api.LookupResponse.json_schema()),
                    **_errors(400, 413, 415),
                },
            }
        },
        "/checkpoint": {
            "get": {
                "summary": "The latest published checkpoint, cosigned (c2sp.org/tlog-tiles)",
                "responses": {"200": _text("the signed checkpoint note"), **_errors(404)},
            }
        },
        "/tile/{path}": {
            "get": {
                "summary": "A hash tile or entry bundle (c2sp.org/tlog-tiles), e.g. 0/x001/234 or entries/000",
                "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "tile bytes", "content": {"application/octet-stream": {}}},
                    **_errors(404),
                },
            }
        },
        "/api/v1/bundle/{index}": {
            "get": {
                "summary": "The proof bundle (c2sp.org/tlog-proof) of one entry; ?format=binary for the QR form",
                "parameters": [
                    {"name": "index", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                    {"name": "format", "in": "query", "required": False, "schema": {"enum": ["text", "binary"]}},
                ],
                "responses": {
                    "200": {
                        "description": "the bundle",
                        "content": {"text/plain": {"schema": {"type": "string"}}, "application/octet-stream": {}},
                    },
                    **_errors(400, 404),
                },
            }
        },
        "/api/v1/issuers": {
            "get": {
                "summary": "Issuer keys and their history",
                "responses": {"200": _json(api.IssuerRegistry.json_schema())},
            }
        },
        "/api/v1/log": {
            "get": {"summary": "Origin, keys and sizes", "responses": {"200": _json(api.LogInfo.json_schema())}}
        },
        "/api/v1/log-keys": {
            "get": {
                "summary": "The log's key rotations (tlog-log-key/v1 entries) with inclusion proofs in a tree size",
                "parameters": [_int_param("size", False)],
                "responses": {"200": _json(api.LogKeyHistory.json_schema()), **_errors(400)},
            }
        },
        "/healthz": {
            "get": {
                "summary": "Readiness: 503 while a new process warms its reads (logserver/warmup.py)",
                "responses": {"200": _json(api.Health.json_schema()), "503": _json(api.Health.json_schema())},
            }
        },
    },
    "components": {
        "schemas": {
            "Error": api.ErrorBody.json_schema(),
        }
    },
}


def _add_limit_responses(paths: dict[str, Any]) -> None:
    """Answers any route may give once [limits] are on (RELIABILITY.md "Limits and abuse"):
    429 from the per-client limit (every route but /healthz), 408 and 429 (per issuer) on submissions."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            codes = ([429] if path != "/healthz" else []) + ([408] if method == "post" else [])
            operation["responses"].update(_errors(*codes))


_add_limit_responses(OPENAPI["paths"])
