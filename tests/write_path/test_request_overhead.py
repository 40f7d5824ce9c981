"""What a request costs besides its work (issue 16): the services' apps look for no OpenTelemetry provider per
request (FastAPI 0.165's native telemetry read the environment three times at each one; Passpro sets none)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from opentelemetry import _logs, metrics, trace

from services.registration.app import create_app
from services.registration.settings import RegistrationSettings


def test_a_request_looks_for_no_telemetry_provider(monkeypatch, tmp_path):
    looked: list[str] = []
    for module, name in ((trace, "get_tracer_provider"), (metrics, "get_meter_provider"),
                         (_logs, "get_logger_provider")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda real=real, name=name: looked.append(name) or real())
    settings = RegistrationSettings(redis_url="redis://127.0.0.1:6379/0", academie="overhead", jwt_secret="s" * 32,
                                    data_dir=tmp_path)
    client = TestClient(create_app(settings))  # no lifespan: /healthz needs no connection
    for _ in range(3):
        assert client.get("/healthz").json() == {"status": "ok"}
    assert looked == []
