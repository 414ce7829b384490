"""Scale-out and crashes: workers share the PostgreSQL queue, a killed worker's job is run again
after its lease, and a killed server (SQLite) resumes its interrupted run after a restart."""
import signal
import time

import pytest

from server_util import Server, create_experiment, sse_events, start_worker, upload_model, wait_for

TECHNIQUES = ["ptq_int8", "ptq_int4", "prune_unstructured", "hybrid"]


def states(server, eid):
    return {t["technique"]: t for t in server.get(f"/api/experiments/{eid}").json()["techniques"]}


def test_three_workers_share_the_queue_and_a_killed_one_is_replaced(tmp_path, fashion_dir):
    s = Server(tmp_path, backend="postgresql", workers=0)
    workers = {name: start_worker(s, name) for name in ("w1", "w2", "w3")}
    try:
        e = create_experiment(s, techniques=TECHNIQUES, max_train_images=3000)
        assert upload_model(s, e["id"]).status_code == 200
        assert s.post(f"/api/optimize/{e['id']}/start").status_code == 202
        # Kill the first worker seen running a technique, mid-technique.
        def running_technique():
            for t in states(s, e["id"]).values():
                if t["job"] == "technique" and t["status"] == "running":
                    return t
            return None
        victim = wait_for(running_technique, 300, what="a running technique")
        time.sleep(0.5)
        workers[victim["worker"]].send_signal(signal.SIGKILL)
        workers[victim["worker"]].wait()
        events = sse_events(s, e["id"], timeout=900)
        assert events[-1][2]["status"] == "completed", events[-5:]
        final = states(s, e["id"])
        assert all(final[t]["status"] == "completed" for t in TECHNIQUES), final
        # The killed job ran again on another worker after its lease expired.
        again = final[victim["technique"]]
        assert again["attempts"] >= 2 and again["worker"] != victim["worker"], again
        # The techniques ran on more than one worker.
        started = {d["worker"] for _, k, d in events if k == "technique_started"}
        assert len(started) >= 2, started
        rows = s.get(f"/api/results/{e['id']}/results").json()["results"]
        assert {r["technique_name"] for r in rows} == {"fp32", *TECHNIQUES}
        assert all(r["status"] == "completed" for r in rows)
        # Every event once, in order, although several processes wrote them.
        ids = [i for i, _, _ in events]
        assert ids == list(range(1, len(ids) + 1))
    finally:
        for w in workers.values():
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)
        s.stop()


def test_killed_server_resumes_after_restart(tmp_path, fashion_dir):
    s = Server(tmp_path, backend="sqlite", workers=2)
    try:
        done = create_experiment(s, name="finished before", techniques=["ptq_int8"])
        assert upload_model(s, done["id"]).status_code == 200
        assert s.post(f"/api/optimize/{done['id']}/start").status_code == 202
        assert sse_events(s, done["id"])[-1][2]["status"] == "completed"
        e = create_experiment(s, name="interrupted", techniques=["ptq_int8", "prune_unstructured", "ptq_int4"], max_train_images=3000)
        assert upload_model(s, e["id"]).status_code == 200
        assert s.post(f"/api/optimize/{e['id']}/start").status_code == 202
        wait_for(lambda: any(t["job"] == "technique" and t["status"] == "running" for t in states(s, e["id"]).values()), 300,
                 what="a running technique")
        s.kill(signal.SIGKILL)
        s.start()  # same store
        listed = {x["id"]: x for x in s.get("/api/experiments").json()["items"]}
        assert set(listed) == {done["id"], e["id"]}
        assert listed[done["id"]]["status"] == "completed"
        # While interrupted it is never listed as completed without every variant.
        assert listed[e["id"]]["status"] in ("queued", "running"), listed[e["id"]]
        events = sse_events(s, e["id"], timeout=900)
        status = events[-1][2]["status"]
        assert status in ("completed", "failed")
        rows = s.get(f"/api/results/{e['id']}/results").json()
        if status == "completed":
            assert {r["technique_name"] for r in rows["results"]} == {"fp32", "ptq_int8", "prune_unstructured", "ptq_int4"}
            assert all(r["status"] == "completed" for r in rows["results"])
        else:
            assert not rows["complete"]
    finally:
        s.stop()
