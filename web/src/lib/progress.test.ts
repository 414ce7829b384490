import { describe, expect, it } from "vitest";
import { applyEvent, initialProgress, reduceEvents, stage } from "./progress";

// Events as the server sends them (shapes from a real run of fashion_cnn with two techniques).
const ev = (id: number, event: string, data: Record<string, unknown>) => ({ id, event, data, time: "2026-01-01T00:00:00Z" });
const RUN = [
  ev(1, "status", { status: "queued", techniques: ["ptq_int8", "prune_unstructured"], message: "queued: baseline, 2 techniques" }),
  ev(2, "status", { status: "running", message: "running on vm:1" }),
  ev(3, "technique_progress", { technique: "fp32", fraction: 0, message: "measuring the baseline" }),
  ev(4, "technique_progress", { technique: "ptq_int8", fraction: 0, message: "queued, about 3 s (estimate)" }),
  ev(5, "baseline_completed", { technique: "fp32", accuracy: 0.912, size_bytes: 424168 }),
  ev(6, "progress", { progress: 0.25, jobs_done: 1, jobs_total: 4 }),
  ev(7, "technique_started", { technique: "ptq_int8", worker: "vm:1" }),
  ev(8, "technique_progress", { technique: "ptq_int8", fraction: 0.4, message: "calibration", eta_seconds_estimate: 3.2 }),
];

describe("progress reducer", () => {
  it("follows a run", () => {
    const s = reduceEvents(RUN);
    expect(s.order).toEqual(["fp32", "ptq_int8", "prune_unstructured"]);
    expect(s.techniques.fp32.status).toBe("completed");
    expect(s.techniques.fp32.metrics?.accuracy).toBe(0.912);
    expect(s.techniques.ptq_int8).toMatchObject({ status: "running", fraction: 0.4, etaSeconds: 3.2, worker: "vm:1" });
    expect(s.techniques.prune_unstructured.status).toBe("queued");
    expect(s.progress).toBe(0.25);
    expect(s.lastId).toBe(8);
    expect(s.ended).toBe(false);
    expect(stage(s)).toBe("ptq_int8: calibration");
  });
  it("resuming from saved state ignores events already seen, so a reload is exact", () => {
    const half = reduceEvents(RUN.slice(0, 5));
    const resumed = reduceEvents(RUN.slice(3), half); // the stream repeats 4 and 5
    expect(resumed).toEqual(reduceEvents(RUN));
    expect(resumed.log.length).toBe(RUN.length);
  });
  it("a finished technique keeps its metrics; a failed one its error; cancel ends the rest", () => {
    let s = reduceEvents(RUN);
    s = applyEvent(s, ev(9, "technique_completed", { technique: "ptq_int8", status: "completed", accuracy: 0.91, accuracy_drop_pp: 0.2 }));
    s = applyEvent(s, ev(10, "technique_completed", { technique: "prune_unstructured", status: "failed", error: "boom" }));
    expect(s.techniques.ptq_int8.metrics?.accuracy_drop_pp).toBe(0.2);
    expect(s.techniques.prune_unstructured).toMatchObject({ status: "failed", error: "boom" });
    const c = applyEvent(reduceEvents(RUN), ev(9, "status", { status: "cancelled", message: "stopped by the user" }));
    expect(c.ended).toBe(true);
    expect(c.techniques.ptq_int8.status).toBe("cancelled");
  });
  it("an experiment never started says so and ends", () => {
    const s = applyEvent(initialProgress(), ev(1, "created", { message: "not started" }));
    expect(s.ended).toBe(true);
    expect(s.status).toBe("created");
  });
});
