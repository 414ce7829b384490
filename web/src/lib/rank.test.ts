import { describe, expect, it } from "vitest";
import { rank, type RawResults } from "./rank";
import fixture from "./rank.fixture.json";

// Answers recorded from a real server (scripts/record-whatif.mjs): the browser's ranking must
// pick the same variant, in the same order, with the same score and confidence.
type Case = { body: Record<string, number | string | null>; technique: string; score: number; meets_limits: boolean; confidence: number; order: string[] };

describe("what-if ranking agrees with the server's", () => {
  for (const c of fixture.cases as Case[]) {
    const b = c.body;
    it(`${b.optimization_goal} on ${b.target_device} with ${JSON.stringify(Object.fromEntries(Object.entries(b).filter(([k, v]) => v !== null && k.startsWith("max"))))}`, () => {
      const r = rank(fixture.raw as RawResults, String(b.optimization_goal), String(b.target_device), {
        dropPoints: b.max_accuracy_drop_points as number | null,
        dropRelative: b.max_accuracy_drop_relative_pct as number | null,
        sizeMb: b.max_size_mb as number | null,
        latencyMs: b.max_latency_ms as number | null,
        memoryMb: b.max_memory_mb as number | null,
      });
      expect(r.technique).toBe(c.technique);
      expect(r.meetsLimits).toBe(c.meets_limits);
      expect(r.ranking.map((x) => x.technique)).toEqual(c.order);
      expect(r.score).toBeCloseTo(c.score, 9);
      expect(r.confidence).toBeCloseTo(c.confidence, 9);
    });
  }
});
