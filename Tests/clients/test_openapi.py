"""`/openapi.json` is a valid OpenAPI 3.1 document (checked by `openapi-spec-validator`), and `/docs` is a page made
from it. That it lists exactly the routes the server registers is checked in Tests/GatewayTests/OpenAPITests.swift."""

from __future__ import annotations

import os

import httpx
from openapi_spec_validator import validate


def test_openapi_document_is_valid():
    url = os.environ["SWITCHYARD_URL"].rstrip("/")
    doc = httpx.get(url + "/openapi.json", timeout=30).json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for path in ["/v1/chat/completions", "/v1/messages", "/api/chat", "/api/v1/chat"]:
        assert "post" in doc["paths"][path]
    page = httpx.get(url + "/docs", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "/openapi.json" in page.text
