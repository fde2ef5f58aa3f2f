"""Security headers on every kind of answer: JSON never cached or sniffed, /docs under a CSP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.settings import Settings
from server.app import create_app


def test_json_api_and_docs_headers(database_url, engine, project):
    app = create_app(Settings(database_url=database_url, demo="off"), engine=engine, parts=("api", "web"))
    key = {"authorization": f"Bearer {project[1]}"}
    with TestClient(app) as client:
        for path in ("/api/traces", "/api/costs", "/openapi.json", "/api/nothing-here"):
            response = client.get(path, headers=key)
            assert response.headers["cache-control"] == "no-store", path
            assert response.headers["x-content-type-options"] == "nosniff", path
        unauthenticated = client.get("/api/traces")
        assert unauthenticated.status_code == 401 and unauthenticated.headers["cache-control"] == "no-store"
        docs = client.get("/docs", headers=key)
        csp = docs.headers["content-security-policy"]
        assert docs.status_code == 200 and "'sha256-" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp and "default-src 'none'" in csp
