// The recommendation engine's ranking (src/recommend/recommend.cpp, as called by
// pipeline::recommend_results), in the browser, so "what if" answers at once; the server's
// answer (with its full reasoning) follows and replaces it. rank.test.ts checks both agree on
// answers recorded from a real server.

export type RawEstimate = {
  device?: string;
  latency_ms?: number;
  latency_ms_low?: number;
  latency_ms_high?: number;
  peak_memory_bytes?: number;
  fits_in_memory?: boolean;
  error?: unknown;
};
export type RawVariant = { technique: string; status?: string; accuracy: number; accuracy_ci95: number[]; size_bytes: number; device_estimates?: RawEstimate[] };
export type RawResults = { baseline: RawVariant; variants: RawVariant[] };

export type Goal = "balanced" | "size" | "speed" | "accuracy";
export type Limits = { dropPoints?: number | null; dropRelative?: number | null; sizeMb?: number | null; latencyMs?: number | null; memoryMb?: number | null };
export type Ranked = { technique: string; score: number; feasible: boolean; pareto: boolean };
export type Ranking = { technique: string; score: number; meetsLimits: boolean; confidence: number; ranking: Ranked[] };

export function goalOf(name: string): Goal {
  if (name === "minimize_size" || name === "size") return "size";
  if (name === "maximize_speed" || name === "minimize_latency" || name === "speed") return "speed";
  if (name === "maximize_accuracy" || name === "accuracy") return "accuracy";
  return "balanced";
}

const WEIGHTS: Record<Goal, { accuracy: number; size: number; latency: number; memory: number }> = {
  balanced: { accuracy: 1.0, size: 0.5, latency: 0.5, memory: 0.25 },
  size: { accuracy: 0.25, size: 1.0, latency: 0.25, memory: 0.25 },
  speed: { accuracy: 0.25, size: 0.25, latency: 1.0, memory: 0.0 },
  accuracy: { accuracy: 1.0, size: 0.0, latency: 0.0, memory: 0.0 },
};

type M = {
  technique: string;
  accuracy: number;
  ci: number;
  size: number;
  hasLatency: boolean;
  latency: number;
  latencyLow: number;
  latencyHigh: number;
  memory: number;
  hasMemory: boolean;
  fits: boolean;
  drop: number;
  dropPct: number;
  score: number;
  scoreLow: number;
  scoreHigh: number;
  feasible: boolean;
  excess: number;
  dominatedBy: string;
};

const dominates = (a: M, b: M) => {
  const lat = a.hasLatency && b.hasLatency;
  const mem = a.hasMemory && b.hasMemory;
  const ge = a.accuracy >= b.accuracy && a.size <= b.size && (!lat || a.latency <= b.latency) && (!mem || a.memory <= b.memory);
  const gt = a.accuracy > b.accuracy || a.size < b.size || (lat && a.latency < b.latency) || (mem && a.memory < b.memory);
  return ge && gt;
};

function better(a: M, b: M): boolean {
  if (Math.abs(a.score - b.score) > 1e-9) return a.score > b.score;
  if (a.accuracy !== b.accuracy) return a.accuracy > b.accuracy;
  if (a.size !== b.size) return a.size < b.size;
  if (a.latency !== b.latency) return a.latency < b.latency;
  if (a.memory !== b.memory) return a.memory < b.memory;
  return a.technique < b.technique;
}
const cmp = (a: M, b: M) => (better(a, b) ? -1 : better(b, a) ? 1 : 0);

export function rank(results: RawResults, goalName: string, device: string, limits: Limits, tolerancePoints = 1.0): Ranking {
  const variants = [results.baseline, ...results.variants.filter((v) => v.status === "completed")];
  const w = WEIGHTS[goalOf(goalName)];
  const base0 = variants[0];
  let allLatency = true;
  const m: M[] = variants.map((v) => {
    const e = (v.device_estimates ?? []).filter((x) => !("error" in x)).find((x) => !device || x.device === device);
    const acc = 100 * v.accuracy;
    const x: M = {
      technique: v.technique,
      accuracy: acc,
      ci: (100 * ((v.accuracy_ci95?.[1] ?? 0) - (v.accuracy_ci95?.[0] ?? 0))) / 2,
      size: v.size_bytes,
      hasLatency: !!e,
      latency: e?.latency_ms ?? 0,
      latencyLow: e && (e.latency_ms_low ?? 0) > 0 ? e.latency_ms_low! : (e?.latency_ms ?? 0),
      latencyHigh: e && (e.latency_ms_high ?? 0) > 0 ? e.latency_ms_high! : (e?.latency_ms ?? 0),
      memory: e?.peak_memory_bytes ?? 0,
      hasMemory: (e?.peak_memory_bytes ?? 0) > 0,
      fits: e?.fits_in_memory ?? true,
      drop: 100 * base0.accuracy - acc,
      dropPct: base0.accuracy > 0 ? (100 * (100 * base0.accuracy - acc)) / (100 * base0.accuracy) : 0,
      score: 0,
      scoreLow: 0,
      scoreHigh: 0,
      feasible: true,
      excess: 0,
      dominatedBy: "",
    };
    if (!e) allLatency = false;
    return x;
  });
  let allMemory = allLatency && m.every((x) => x.hasMemory);
  for (const x of m) {
    x.hasMemory = allMemory;
    if (!allLatency) x.hasLatency = false;
  }
  const L = limits;
  const maxSize = L.sizeMb != null ? Math.trunc(L.sizeMb * 1e6) : null;
  const maxMem = L.memoryMb != null ? Math.trunc(L.memoryMb * 1e6) : null;
  for (const x of m) {
    let excess = 0;
    let n = 0;
    const add = (value: number, bound: number, ram = false) => {
      n++;
      excess += ram ? 10 : (value - bound) / Math.max(Math.abs(bound), 1e-9);
    };
    if (L.dropPoints != null && x.drop > L.dropPoints + 1e-9) add(x.drop, L.dropPoints);
    if (L.dropRelative != null && x.dropPct > L.dropRelative + 1e-9) add(x.dropPct, L.dropRelative);
    if (maxSize != null && x.size > maxSize) add(x.size, maxSize);
    if (L.latencyMs != null && x.hasLatency && x.latency > L.latencyMs) add(x.latency, L.latencyMs);
    if (maxMem != null && x.hasLatency && x.memory > maxMem) add(x.memory, maxMem);
    if (x.hasLatency && !x.fits) add(x.memory, 0, true);
    x.feasible = n === 0;
    x.excess = excess;
  }
  let tol = Number.isFinite(tolerancePoints) && tolerancePoints > 0 ? tolerancePoints : 1.0;
  if (L.dropPoints != null) tol = Math.min(tol, L.dropPoints);
  if (L.dropRelative != null) tol = Math.min(tol, (L.dropRelative * 100 * base0.accuracy) / 100);
  tol = Math.max(tol, 0.1);
  const base = m[0];
  for (const x of m) {
    const sum = (acc: number, lat: number) =>
      -w.accuracy * ((base.accuracy - acc) / tol) +
      w.size * Math.log2(base.size / x.size) +
      (x.hasLatency ? w.latency * Math.log2(base.latency / lat) : 0) +
      (x.hasMemory ? w.memory * Math.log2(base.memory / x.memory) : 0);
    x.score = sum(x.accuracy, x.latency);
    x.scoreLow = sum(x.accuracy - x.ci, x.latencyHigh);
    x.scoreHigh = sum(x.accuracy + x.ci, x.latencyLow);
  }
  for (const x of m) x.dominatedBy = m.find((y) => y !== x && dominates(y, x))?.technique ?? "";
  const order = [...m].sort((a, b) => (a.feasible !== b.feasible ? (a.feasible ? -1 : 1) : cmp(a, b)));
  let winner = order.find((x) => x.feasible && !order.some((y) => y !== x && y.feasible && dominates(y, x)));
  const meetsLimits = !!winner;
  if (!winner) winner = [...order].sort((a, b) => (a.excess !== b.excess ? a.excess - b.excess : cmp(a, b)))[0];
  const runner = order.find((x) => x !== winner && (x.feasible || !meetsLimits));
  let confidence = 0.9;
  if (runner) {
    const spread = 0.5 * (winner.scoreHigh - winner.scoreLow + (runner.scoreHigh - runner.scoreLow)) + 1e-3;
    confidence = Math.min(0.97, Math.max(0.5, 0.5 + (0.5 * (winner.score - runner.score)) / spread));
  }
  const headroom = (low: number, high: number, bound: number) => (high <= bound ? 1 : low >= bound ? 0.1 : Math.min(1, Math.max(0.1, (bound - low) / (high - low))));
  if (L.latencyMs != null && winner.hasLatency) confidence *= headroom(winner.latencyLow, winner.latencyHigh, L.latencyMs);
  if (L.dropPoints != null) confidence *= headroom(winner.drop - winner.ci, winner.drop + winner.ci, L.dropPoints);
  if (!meetsLimits) confidence = Math.min(confidence, 0.3);
  allMemory = false;
  return {
    technique: winner.technique,
    score: winner.score,
    meetsLimits,
    confidence,
    ranking: order.map((x) => ({ technique: x.technique, score: x.score, feasible: x.feasible, pareto: x.dominatedBy === "" })),
  };
}
