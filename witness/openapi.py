"""OpenAPI 3.1 description of the witness's HTTP API (served at /openapi.json; c2sp.org/tlog-witness@v1.0.0).

Bodies are text, not JSON: the add-checkpoint request and response are the
tlog-witness line formats, and every refusal is one line of text naming the
problem (409 carries the known size, `text/x.tlog.size`). Statuses as in
`witness.app.STATUS`.
"""

from typing import Any

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_SIZE = {"text/x.tlog.size": {"schema": {"type": "string", "pattern": "^[0-9]+\n$"}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": _TEXT}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "doc-tlog witness (c2sp.org/tlog-witness)", "version": "1"},
    "paths": {
        "/add-checkpoint": {
            "post": {
                "summary": "Cosign a checkpoint, given the old size and a consistency proof",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {
                            "schema": {
                                "type": "string",
                                "description": "old <size>\\n, 0..63 base64 proof lines, a blank line, the signed note",
                            }
                        }
                    },
                },
                "responses": {
                    "200": _text("the witness's cosignature line(s)"),
                    "400": _text("malformed request, or old size larger than the checkpoint's"),
                    "403": _text("no valid signature by the log's key"),
                    "404": _text("the checkpoint's origin is not a log this witness knows"),
                    "409": {"description": "old size is not the size this witness knows", "content": _SIZE},
                    "413": _text("request body too large"),
                    "422": _text("not consistent with the checkpoint this witness cosigned"),
                },
            }
        },
        "/{origin_hash}/checkpoint": {
            "get": {
                "summary": "The latest checkpoint this witness cosigned for a log",
                "parameters": [
                    {
                        "name": "origin_hash",
                        "in": "path",
                        "required": True,
                        "description": "hex SHA-256 of the log's origin",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _text("the cosigned checkpoint note"),
                    "404": _text("no cosigned checkpoint for this origin"),
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _text("ok")}}},
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI", "content": {"application/json": {}}}},
            }
        },
    },
}
