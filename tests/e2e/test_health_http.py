import requests


def test_health_reports_every_dependency_up_with_replica_lag(gateway, database):
    response = requests.get(f"{gateway}/api/v1/health", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for part in ("writer", "reader", "redis", "s3"):
        assert body[part]["status"] == "up", part
    assert body["reader"]["replication_lag_ms"] >= 0
    assert response.headers["Content-Type"].startswith("application/json")


def test_health_degrades_when_a_dependency_is_down(gateway, database, monkeypatch):
    from nutrimatch.settings import get_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    response = requests.get(f"{gateway}/api/v1/health", timeout=30)
    get_settings.cache_clear()
    assert response.status_code == 503
    assert response.json()["redis"] == {"status": "down", "latency_ms": None, "detail": "ConnectionError",
                                        "replication_lag_ms": None}


def test_openapi_and_docs_are_served(gateway, database):
    spec = requests.get(f"{gateway}/api/v1/openapi.json", timeout=30).json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/health" in spec["paths"]
    docs = requests.get(f"{gateway}/api/v1/docs", timeout=30)
    assert docs.status_code == 200
    assert "openapi.json" in docs.text


def test_unknown_routes_and_oversized_bodies_get_clear_errors(gateway):
    missing = requests.get(f"{gateway}/api/v1/nope", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "route_not_found"
    huge = requests.post(f"{gateway}/api/v1/health", data=b"x" * (10 * 1000 * 1000 + 1), timeout=30)
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
