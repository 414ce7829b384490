"""/openapi.json is a valid OpenAPI 3.1 document that describes every route, and a property-based
run of schemathesis against every route finds no 5xx and no response that breaks its schema."""
import os
import subprocess
import sys

import pytest
import requests

from server_util import Server, create_experiment, sse_events, upload_model


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("openapi"), workers=1)
    yield s
    s.stop()


def test_openapi_document_is_valid(srv):
    from openapi_spec_validator import validate
    spec = srv.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    # Every route the API answers is described (each answers 404 JSON for an unknown id, not "no route").
    for path in spec["paths"]:
        concrete = path.replace("{id}", "x").replace("{technique}", "fp32")
        item = spec["paths"][path]
        for method in ("get", "post", "patch", "delete"):
            if method not in item:
                continue
            r = requests.request(method.upper(), srv.url(concrete), timeout=30)
            assert "no route" not in r.text, (method, path, r.text)
    assert srv.get("/docs").status_code == 200


def test_schemathesis_finds_no_server_error_and_no_schema_violation(srv, fashion_dir, tmp_path):
    # One completed experiment, so that result routes have something real to answer.
    e = create_experiment(srv, techniques=["ptq_int8"], eval_limit=500, max_train_images=1000)
    assert upload_model(srv, e["id"]).status_code == 200
    assert srv.post(f"/api/optimize/{e['id']}/start").status_code == 202
    assert sse_events(srv, e["id"])[-1][2]["status"] == "completed"
    env = dict(os.environ, SCHEMATHESIS_HOOKS="")
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", srv.url("/openapi.json"), "--base-url", srv.base,
           "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
           "--hypothesis-max-examples", os.environ.get("EDGEOPT_SCHEMATHESIS_EXAMPLES", "25"), "--hypothesis-derandomize",
           "--experimental=openapi-3.1", "--exclude-path", "/api/optimize/{id}/progress-stream", "--request-timeout", "60000", "--workers", "2",
           "--cassette-path", str(tmp_path / "cassette.yaml")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert srv.get("/health").status_code == 200
