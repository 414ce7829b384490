import { describe, expect, it } from "vitest";
import { bytes, count, duration, ms, pct, points, trim, techniqueName, goalName } from "./format";

describe("format", () => {
  it("sizes use decimal units like the server's *_mb", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(999)).toBe("999 B");
    expect(bytes(1000)).toBe("1 kB");
    expect(bytes(421_345)).toBe("421 kB");
    expect(bytes(1_690_000)).toBe("1.69 MB");
    expect(bytes(2.5e9)).toBe("2.5 GB");
    expect(bytes(undefined)).toBe("—");
    expect(bytes(NaN)).toBe("—");
  });
  it("counts", () => {
    expect(count(12)).toBe("12");
    expect(count(421_642)).toBe("422 k");
    expect(count(12_300_000)).toBe("12.3 M");
    expect(count(4.1e9)).toBe("4.1 G");
  });
  it("latency switches units", () => {
    expect(ms(0.25)).toBe("250 µs");
    expect(ms(1.234)).toBe("1.23 ms");
    expect(ms(12.0)).toBe("12 ms");
    expect(ms(25_000)).toBe("25 s");
  });
  it("trims", () => {
    expect(trim(1.5)).toBe("1.5");
    expect(trim(1234.5)).toBe("1235");
    expect(trim(0.000123)).toBe("0.000123");
  });
  it("percent and points", () => {
    expect(pct(91.2345)).toBe("91.23 %");
    expect(points(0.4567)).toBe("0.46 pt");
    expect(points(-0.2)).toBe("−0.20 pt");
    expect(points(-0.001)).toBe("0.00 pt");
  });
  it("durations", () => {
    expect(duration(42.4)).toBe("42 s");
    expect(duration(185)).toBe("3 min 5 s");
    expect(duration(3720)).toBe("1 h 2 min");
    expect(duration(-1)).toBe("—");
  });
  it("names", () => {
    expect(techniqueName("ptq_int8")).toBe("Post-training int8");
    expect(techniqueName("new_thing")).toBe("new_thing");
    expect(goalName("minimize_latency")).toBe("Lowest latency");
    expect(goalName("speed")).toBe("Lowest latency");
  });
});

import { estimatorError } from "./device";
describe("estimator error", () => {
  it("reads the calibration's per-device validation", () => {
    const stats = { group: "jetson_nano", median_abs_error: 0.1168, rows: 17, spearman: 0.85, within_10: 0.41, within_25: 0.7647 };
    expect(estimatorError({ id: "jetson_nano", name: "x", estimator_error: stats })).toBe("median error 12 %, 76 % within ±25 %, on 17 published measurements");
    expect(estimatorError({ id: "jetson_nano", name: "x", estimator_error: [stats] })).toMatch(/^median error 12 %/);
    expect(estimatorError({ id: "jetson_nano", name: "x", estimator_error: null })).toBeNull();
    expect(estimatorError({ id: "jetson_nano", name: "x", estimator_error: { lomo: stats, loso: { ...stats, median_abs_error: 0.387 } } })).toBe(
      "unseen model: median error 12 %, 76 % within ±25 %, on 17 published measurements; unseen source: median error 39 %, 76 % within ±25 %, on 17 published measurements",
    );
  });
});
