// `edgeopt report`: the results view from a CLI run's results.json, without a server. The rows
// are shaped as the server shapes them (result_row in src/server/api.cpp; report.test.ts and the
// e2e run check the two agree) and "what if" ranks in the browser (lib/rank.ts).
import type { Recommendations, ResultRow, Results, WhatIf } from "../api/client";
import { rank, type RawResults } from "./rank";

type Json = Record<string, unknown>;
const num = (x: unknown, d = 0) => (typeof x === "number" && Number.isFinite(x) ? x : d);

/** One variant of results.json as the API's result row (the predecessor's names beside ours). */
export function resultRow(v: Json, baseline: Json, device: string): ResultRow {
  const done = v.status === "completed";
  const row: Json = { technique_name: v.technique ?? "", technique: v.technique ?? "", status: v.status ?? "", error: v.error ?? null };
  const baseAcc = num(baseline.accuracy);
  row.original_accuracy = 100 * baseAcc;
  row.original_size_mb = num(baseline.size_bytes) / 1e6;
  if (!done) {
    row.per_class = null;
    return row as ResultRow;
  }
  const acc = num(v.accuracy);
  Object.assign(row, {
    optimized_accuracy: 100 * acc,
    accuracy_drop_percent: 100 * (baseAcc - acc),
    accuracy_drop_points: 100 * (baseAcc - acc),
    accuracy_drop_relative_pct: baseAcc > 0 ? (100 * (baseAcc - acc)) / baseAcc : 0,
    accuracy_ci95: v.accuracy_ci95 ?? [],
    test_samples: num(v.samples),
    optimized_size_mb: num(v.size_bytes) / 1e6,
    size_bytes: num(v.size_bytes),
    size_gzip_bytes: num(v.size_gzip_bytes),
    size_ratio: num(baseline.size_bytes) > 0 ? num(v.size_bytes) / num(baseline.size_bytes, 1) : 0,
    params: num(v.params),
    nonzero_params: num(v.nonzero_params),
    macs: num(v.macs),
    precision: v.precision ?? "",
    peak_memory_bytes: num(v.peak_memory_bytes),
    notes: v.notes ?? [],
    metrics: v.metrics ?? {},
    per_class: v.per_class ?? null,
    measured: "accuracy (test split), size (read from disk), params, MACs; host latency when present",
  });
  if ("host_latency_ms" in v) {
    row.host_latency_ms = v.host_latency_ms;
    row.host_latency_ms_1thread = v.host_latency_ms_1thread ?? null;
    row.host_latency_unstable = v.host_latency_unstable ?? false;
  }
  if (Array.isArray(v.device_estimates)) {
    row.device_estimates = v.device_estimates;
    for (const e of v.device_estimates as Json[]) if (e.device === device) row.target_device_estimate = { ...e, is_estimate: true };
  }
  if ("download" in v) row.download = v.download;
  return row as ResultRow;
}

/** The whole results object, as GET /api/results/{id}/results answers for a finished run. */
export function resultsFromRaw(raw: Json, id: string, device: string): Results {
  const baseline = (raw.baseline && typeof raw.baseline === "object" ? raw.baseline : {}) as Json;
  const rows: ResultRow[] = [];
  if (raw.baseline && typeof raw.baseline === "object") rows.push(resultRow(baseline, baseline, device));
  for (const v of Array.isArray(raw.variants) ? (raw.variants as Json[]) : []) rows.push(resultRow(v, baseline, device));
  const out: Json = {
    experiment_id: id,
    status: "completed",
    complete: true,
    target_device: device || null,
    results: rows,
    recommendation: raw.recommendation ?? null,
    dataset: raw.dataset ?? null,
    classes: raw.classes ?? null,
    class_names: raw.class_names ?? null,
    host_latency_unstable: raw.host_latency_unstable ?? null,
    host_latency_note: raw.host_latency_note ?? null,
    preprocessing: raw.preprocessing ?? null,
    estimates_note: String(raw.estimates_note ?? "device figures are estimates (docs/estimator.md); accuracy, sizes and host latency are measured"),
    raw,
  };
  return out as unknown as Results;
}

/** The devices the run has estimates for (ids, in the order of the first variant's estimates). */
export function estimatedDevices(raw: Json): string[] {
  const seen = new Set<string>();
  for (const v of [raw.baseline, ...(Array.isArray(raw.variants) ? raw.variants : [])] as Json[])
    for (const e of Array.isArray(v?.device_estimates) ? (v.device_estimates as Json[]) : []) if (typeof e.device === "string" && !e.error) seen.add(e.device);
  return [...seen];
}

type RecJson = { technique?: string; ranking?: { technique: string; score: number; feasible?: boolean; pareto?: boolean; verdict?: string }[] } & Json;

/** The run's own recommendation (null body), or a what-if ranked here, as the API's answer. */
export function localRecommendations(raw: Json, body: WhatIf | null, runDevice: string): Recommendations {
  const rec = (raw.recommendation ?? {}) as RecJson;
  if (!body) {
    return {
      experiment_id: "report",
      recommendation: rec as Recommendations["recommendation"],
      recommendations: (rec.ranking ?? []).map((x, i) => ({ rank: i + 1, technique_name: x.technique, score: x.score, reasoning: x.verdict ?? "", feasible: x.feasible, pareto: x.pareto })),
    };
  }
  const r = rank(raw as unknown as RawResults, body.optimization_goal ?? String(rec.goal ?? "balanced"), body.target_device ?? runDevice, {
    dropPoints: body.max_accuracy_drop_points ?? null,
    dropRelative: body.max_accuracy_drop_relative_pct ?? null,
    sizeMb: body.max_size_mb ?? null,
    latencyMs: body.max_latency_ms ?? null,
    memoryMb: body.max_memory_mb ?? null,
  });
  const reasoning = `${r.technique} ranks first for these settings (score ${r.score.toFixed(3)}${r.meetsLimits ? "" : "; no variant meets every limit"}), ranked in this report from the measured variants; run edgeopt optimize with these settings for the engine's full reasoning.`;
  return {
    experiment_id: "report",
    recommendation: {
      technique: r.technique,
      score: r.score,
      confidence: r.confidence,
      meets_limits: r.meetsLimits,
      goal: body.optimization_goal ?? rec.goal,
      reasoning,
      relaxations: [],
      notes: [],
    } as unknown as Recommendations["recommendation"],
    recommendations: r.ranking.map((x, i) => ({ rank: i + 1, technique_name: x.technique, score: x.score, reasoning: "", feasible: x.feasible, pareto: x.pareto })),
  };
}
