import { describe, expect, it } from "vitest";
import { estimatedDevices, localRecommendations, resultsFromRaw } from "./report";
import { rank, type RawResults } from "./rank";
import fixture from "./rank.fixture.json";

const raw = fixture.raw as unknown as Record<string, unknown>;

describe("the report's results (results.json shaped as the server shapes it)", () => {
  const r = resultsFromRaw(raw, "report", "raspberry_pi_4");
  it("has the baseline first, then every variant", () => {
    expect(r.results.map((x) => x.technique)).toEqual(["fp32", ...(fixture.raw.variants as { technique: string }[]).map((v) => v.technique)]);
  });
  it("gives accuracy in %, the drop in points and relative, sizes and the target's estimate", () => {
    const v = fixture.raw.variants[0] as { accuracy: number; size_bytes: number };
    const row = r.results[1];
    expect(row.optimized_accuracy).toBeCloseTo(100 * v.accuracy, 9);
    expect(row.accuracy_drop_points).toBeCloseTo(100 * (fixture.raw.baseline.accuracy - v.accuracy), 9);
    expect(row.accuracy_drop_relative_pct).toBeCloseTo((100 * (fixture.raw.baseline.accuracy - v.accuracy)) / fixture.raw.baseline.accuracy, 9);
    expect(row.size_bytes).toBe(v.size_bytes);
    expect(row.original_size_mb).toBeCloseTo(fixture.raw.baseline.size_bytes / 1e6, 12);
    expect((row.target_device_estimate as unknown as { device: string; is_estimate: boolean }).device).toBe("raspberry_pi_4");
    expect((row.target_device_estimate as unknown as { is_estimate: boolean }).is_estimate).toBe(true);
  });
  it("keeps a failed variant's status and error, without figures", () => {
    const f = resultsFromRaw({ ...raw, variants: [{ technique: "qat_int8", status: "failed", error: "out of memory" }] }, "x", "");
    expect(f.results[1]).toMatchObject({ technique: "qat_int8", status: "failed", error: "out of memory" });
    expect(f.results[1].optimized_accuracy).toBeUndefined();
  });
  it("lists the devices with estimates", () => {
    expect(estimatedDevices(raw)).toContain("raspberry_pi_4");
    expect(estimatedDevices({})).toEqual([]);
  });
  it("ranks a what-if with the engine's port, the run's own recommendation otherwise", () => {
    const body = { optimization_goal: "minimize_size" as const, target_device: "jetson_nano", max_accuracy_drop_points: 1 };
    const mine = localRecommendations(raw, body, "raspberry_pi_4");
    const direct = rank(fixture.raw as unknown as RawResults, "minimize_size", "jetson_nano", { dropPoints: 1 });
    expect((mine.recommendation as unknown as { technique: string }).technique).toBe(direct.technique);
    expect(mine.recommendations.map((x) => x.technique_name)).toEqual(direct.ranking.map((x) => x.technique));
    const own = localRecommendations({ recommendation: { technique: "ptq_int8", ranking: [{ technique: "ptq_int8", score: 1, verdict: "best" }] } }, null, "");
    expect(own.recommendations).toEqual([{ rank: 1, technique_name: "ptq_int8", score: 1, reasoning: "best", feasible: undefined, pareto: undefined }]);
  });
});
