// Shapes the server's result rows for the table and charts.
import type { Estimate, ResultRow } from "../api/client";
import { paretoFront } from "./pareto";

/** One device's estimate in a result row (the Estimate schema, without the request's fields). */
export type DeviceEstimate = Omit<Estimate, "is_estimate" | "technique"> & {
  notes?: string[];
  error?: unknown; // the estimator could not place the variant on this device
};

export type Latency = { p50?: number; p95?: number; threads?: number };

export function estimates(row: ResultRow): DeviceEstimate[] {
  return Array.isArray(row.device_estimates) ? (row.device_estimates as unknown as DeviceEstimate[]) : [];
}

export function estimateOn(row: ResultRow, device: string | null | undefined): DeviceEstimate | undefined {
  return estimates(row).find((e) => e.device === device && !e.error);
}

export function hostLatency(row: ResultRow): Latency | undefined {
  return row.host_latency_ms as Latency | undefined;
}

export type ChartPoint = { id: string; accuracy: number; cost: number; low?: number; high?: number; pareto: boolean; recommended: boolean };

/** Points of a trade-off chart (accuracy % against a cost), with this chart's Pareto front marked. */
export function chartPoints(rows: ResultRow[], cost: (r: ResultRow) => number | undefined, recommended?: string, interval?: (r: ResultRow) => [number, number] | undefined): ChartPoint[] {
  const pts: ChartPoint[] = [];
  for (const r of rows) {
    if (r.status !== "completed" || r.optimized_accuracy === undefined) continue;
    const c = cost(r);
    if (c === undefined || !Number.isFinite(c)) continue;
    const iv = interval?.(r);
    pts.push({ id: r.technique, accuracy: r.optimized_accuracy, cost: c, low: iv?.[0], high: iv?.[1], pareto: false, recommended: r.technique === recommended });
  }
  const front = new Set(paretoFront(pts).map((p) => p.id));
  for (const p of pts) p.pareto = front.has(p.id);
  return pts;
}
