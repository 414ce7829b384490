"""Bad requests of every kind get the right status and a clear message, lose nothing, and the
server keeps serving; auth and CORS off loopback."""
import io
import json
import os
import pickle
import socket
import subprocess
import zipfile

import pytest
import requests

from conftest import ROOT, edgeopt_bin
from server_util import MODEL, Server, create_experiment, upload_model, wait_for
from test_server import assert_error


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("bad"), workers=1, args=["--max-upload-mb", "2"])
    yield s
    s.stop()


@pytest.fixture
def exp(srv):
    return create_experiment(srv)


@pytest.fixture(autouse=True)
def still_serving(srv):
    yield
    assert srv.get("/health").json()["status"] == "ok"
    assert srv.proc.poll() is None


def test_malformed_json_and_wrong_types(srv):
    assert_error(srv.post("/api/experiments/create", data="{not json", headers={"Content-Type": "application/json"}), 422, "not valid json")
    assert_error(srv.post("/api/experiments/create", json=[1, 2]), 422, "object")
    assert_error(srv.post("/api/experiments/create", json={"name": 5}), 422, "name")
    assert_error(srv.post("/api/experiments/create", json={"max_size_mb": "big"}), 422, "max_size_mb")
    assert_error(srv.post("/api/experiments/create", json={"max_accuracy_drop_percent": -1}), 422, "max_accuracy_drop_percent")
    assert_error(srv.post("/api/experiments/create", json={"target_device": "toaster"}), 422, "toaster", "raspberry_pi_4")
    assert_error(srv.post("/api/experiments/create", json={"optimization_goal": "cheapest"}), 422, "cheapest")
    assert_error(srv.post("/api/experiments/create", json={"techniques": ["ptq_int8", "ptq_int8"]}), 422, "twice")
    assert_error(srv.post("/api/experiments/create", json={"techniques": ["int3"]}), 422, "int3", "ptq_int8")
    assert_error(srv.post("/api/experiments/create", json={"parameters": {"ptq_int4": {"group_size": "zero"}}}), 422, "group_size")
    assert_error(srv.post("/api/experiments/create", json={"dataset_name": "imagenet22k"}), 422, "imagenet22k")
    assert_error(srv.post("/api/experiments/create", json={"colour": "red"}), 422, "colour")
    assert_error(srv.post("/api/experiments/create", data="x" * (2 << 20), headers={"Content-Type": "application/json"}), 413)
    assert_error(srv.post("/api/experiments/create", data="name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 422, "json")


def test_unknown_ids_routes_and_methods(srv):
    assert_error(srv.get("/api/experiments/nope"), 404, "nope")
    assert_error(srv.post("/api/optimize/nope/start"), 404)
    assert_error(srv.get("/api/results/nope/results"), 404)
    assert_error(srv.get("/api/optimize/nope/progress-stream"), 404)
    assert_error(srv.get("/api/nothing/here"), 404, "openapi")
    assert_error(requests.put(srv.url("/api/experiments/create"), timeout=10), 405)
    assert_error(srv.get("/api/experiments", params={"limit": "-3"}), 422)
    assert_error(srv.get("/api/experiments", params={"status": "sleeping"}), 422, "sleeping")


def test_upload_errors(srv, exp, tmp_path):
    url = f"/api/upload/{exp['id']}/model"
    assert_error(srv.post(url, data=b"abc", headers={"Content-Type": "application/octet-stream"}), 415, "multipart")
    assert_error(srv.post(url, files={"file": ("m.onnx", b"")}), 400, "empty")
    assert_error(srv.post(url, files={"other": ("m.onnx", b"abc")}), 400, "file")
    # Oversize: refused from its declared length, before it is read.
    assert_error(srv.post(url, files={"file": ("big.onnx", b"\0" * (3 << 20))}), 413, "limit")
    # A truncated multipart body (the closing boundary never comes).
    body = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\n' + open(MODEL, "rb").read()[:500]
    assert_error(srv.post(url, data=body, headers={"Content-Type": "multipart/form-data; boundary=XX"}), 400, "truncated")
    # A truncated model file.
    data = open(MODEL, "rb").read()
    r = srv.post(url, files={"file": ("cut.onnx", data[: len(data) // 2])})
    assert r.status_code == 422, r.text
    # A pickled PyTorch module is never unpickled: the answer says how to export instead.
    class Model:
        pass
    p = tmp_path / "model.pth"
    import torch
    torch.save({"weight": torch.zeros(3)}, p)
    r = srv.post(url, files={"file": ("model.pth", p.read_bytes())})
    assert_error(r, 422, "torch.jit.save")
    r = srv.post(url, files={"file": ("model.pkl", pickle.dumps(Model.__name__ * 3))})
    assert r.status_code == 422, r.text
    r = srv.post(url, files={"file": ("x.onnx", b"this is not a model at all")})
    assert r.status_code == 422, r.text
    assert_error(srv.post(url, files={"file": ("m.onnx", data)}, data={"model_source": "stolen"}), 422, "model_source")
    assert_error(srv.post(url, data={"model_source": "pretrained", "pretrained_model_name": "no-such-model"}, files={"x": ("a", b"b")}), 404, "no-such-model")
    # Nothing was lost: the experiment is unchanged and a good upload still works.
    assert srv.get(f"/api/experiments/{exp['id']}").json()["model"] is None
    assert upload_model(srv, exp["id"]).status_code == 200


def hostile_zip(kind):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        if kind == "slip":
            z.writestr("../../evil/a.png", b"x")
        elif kind == "bomb":
            z.writestr("cls/a.png", b"\0" * (200 << 20), compress_type=zipfile.ZIP_DEFLATED)
        elif kind == "link":
            info = zipfile.ZipInfo("cls/link.png")
            info.external_attr = 0o120777 << 16  # a symlink entry
            z.writestr(info, "/etc/passwd")
        elif kind == "not_images":
            z.writestr("cls/a.png", b"not a png")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["slip", "bomb", "link", "not_images"])
def test_hostile_dataset_zip(srv, exp, kind):
    r = srv.post(f"/api/upload/{exp['id']}/dataset", files={"file": ("data.zip", hostile_zip(kind))})
    assert r.status_code in (413, 422), r.text
    assert_error(r, r.status_code)
    assert srv.get(f"/api/experiments/{exp['id']}").json()["dataset"] is None


def test_life_cycle_conflicts(srv, exp):
    assert_error(srv.post(f"/api/optimize/{exp['id']}/start"), 409, "no model")
    assert_error(srv.post(f"/api/optimize/{exp['id']}/stop"), 409, "not been started")
    assert upload_model(srv, exp["id"]).status_code == 200
    assert srv.post(f"/api/optimize/{exp['id']}/start").status_code == 202
    assert_error(srv.post(f"/api/optimize/{exp['id']}/start"), 409, "already")
    assert_error(upload_model(srv, exp["id"]), 409, "no longer change")
    # Delete while running: it is stopped and removed, and the server goes on.
    r = requests.delete(srv.url(f"/api/experiments/{exp['id']}"), timeout=30)
    assert r.status_code == 200, r.text
    assert_error(srv.get(f"/api/experiments/{exp['id']}"), 404)


def test_slow_and_broken_clients_do_not_stall_others(srv):
    # Half a request, then nothing: other requests are still answered.
    s = socket.create_connection(("127.0.0.1", int(srv.base.rsplit(":", 1)[1])))
    s.sendall(b"POST /api/experiments/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert srv.get("/health").status_code == 200
    s.close()
    # Garbage instead of HTTP.
    s = socket.create_connection(("127.0.0.1", int(srv.base.rsplit(":", 1)[1])))
    s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
    reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply
    s.close()


def test_auth_off_loopback_rules(tmp_path):
    s = Server(tmp_path, workers=0, args=["--auth", "--cors-origin", "http://ui.example"])
    try:
        def token(name):
            out = subprocess.run([edgeopt_bin(), "tokens", "create", name, "--store", s.store], capture_output=True, text=True, check=True)
            return out.stdout.strip()
        alice, bob = token("alice"), token("bob")
        assert s.get("/health").status_code == 200  # no token needed
        assert_error(s.get("/api/experiments"), 401, "token")
        assert_error(s.get("/api/experiments", headers={"Authorization": "Bearer wrong"}), 401, "not valid")
        A = {"Authorization": f"Bearer {alice}"}
        B = {"Authorization": f"Bearer {bob}"}
        r = s.post("/api/experiments/create", json={"name": "alice's"}, headers=A)
        assert r.status_code == 201
        eid = r.json()["id"]
        assert s.get(f"/api/experiments/{eid}", headers=A).status_code == 200
        assert_error(s.get(f"/api/experiments/{eid}", headers=B), 404)  # another user's id is unknown to bob
        assert_error(requests.delete(s.url(f"/api/experiments/{eid}"), headers=B, timeout=10), 404)
        assert s.get("/api/experiments", headers=B).json()["total"] == 0
        assert s.get("/api/experiments", headers=A).json()["total"] == 1
        # CORS: the configured origin is echoed, never '*'; others get no grant.
        r = s.get("/api/experiments", headers={**A, "Origin": "http://ui.example"})
        assert r.headers.get("Access-Control-Allow-Origin") == "http://ui.example"
        r = s.get("/api/experiments", headers={**A, "Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
        # Stored hashed: the secret is nowhere in the database file.
        assert alice.encode() not in open(os.path.join(s.store, "edgeopt.db"), "rb").read()
    finally:
        s.stop()


def test_cors_star_is_refused(tmp_path):
    r = subprocess.run([edgeopt_bin(), "serve", "--port", "0", "--store", str(tmp_path / "s"), "--cors-origin", "*"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "never allowed" in r.stderr


def test_bound_off_loopback_every_route_but_health_needs_a_token(tmp_path):
    import re
    proc = subprocess.Popen([edgeopt_bin(), "serve", "--host", "0.0.0.0", "--port", "0", "--workers", "0", "--store", str(tmp_path / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        port = re.search(r":(\d+) ", line).group(1)
        assert "bearer tokens required" in line
        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/health", timeout=10).status_code == 200
        for path in ("/api/experiments", "/api/devices", "/metrics", "/api/zoo"):
            r = requests.get(base + path, timeout=10)
            assert r.status_code == 401, (path, r.status_code)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
