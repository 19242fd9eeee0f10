"""The app in process (Starlette's test client): not ready, unknown routes, and a fault inside,
all in OpenAI's error shape and never with a traceback."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from runtime.serve import ServeConfig, create_app
from tests.runtime.serve.conftest import audio_part, user, wav_bytes


def chat_body() -> dict:
    return {"model": "m", "messages": user(audio_part(wav_bytes(1.0)), "What is said?"), "max_tokens": 4}


def test_not_ready_until_the_bundle_is_loaded(tiny_bundle):
    client = TestClient(create_app(ServeConfig(tiny_bundle)))  # no lifespan: the workers never start
    health = client.get("/health")
    assert health.status_code == 503 and "loading the bundle" in health.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json=chat_body())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5" and r.json()["error"]["type"] == "server_error"


def test_unknown_routes_and_methods_answer_in_openais_shape(tiny_bundle):
    client = TestClient(create_app(ServeConfig(tiny_bundle)))
    for method, path, status in (("get", "/v1/embeddings", 404), ("get", "/v1/chat/completions", 405)):
        r = getattr(client, method)(path)
        assert r.status_code == status and set(r.json()["error"]) == {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def running(tiny_bundle):
    app = create_app(ServeConfig(tiny_bundle, load={"decoder": "q8_0"}))
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/health").status_code == 200:
                break
            time.sleep(0.1)
        yield app, client


def test_a_fault_inside_is_a_500_with_one_line_and_no_traceback(running, monkeypatch):
    app, client = running

    async def broken(_uploads):
        raise RuntimeError("secret detail at /root/private/path.py line 3")

    monkeypatch.setattr(app.state.server, "decode", broken)
    r = TestClient(app, raise_server_exceptions=False).post("/v1/chat/completions", json=chat_body())
    assert r.status_code == 500 and r.json()["error"]["message"].startswith("internal error")
    assert "secret" not in r.text and "Traceback" not in r.text


def test_a_full_queue_is_429_before_the_audio_is_decoded(running, monkeypatch):
    app, client = running
    pool = app.state.server.pool
    monkeypatch.setattr(pool.workers[0].queue, "full", lambda: True)
    decoded = []
    monkeypatch.setattr(app.state.server.clips, "decode", lambda *a: decoded.append(a))
    r = client.post("/v1/chat/completions", json=chat_body())
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and decoded == []
