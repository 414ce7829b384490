// Reads the catalogue's device documents: most figures are {value, source, flags}.
import type { Device } from "../api/client";

export function val(x: unknown): unknown {
  return x && typeof x === "object" && "value" in (x as Record<string, unknown>) ? (x as { value: unknown }).value : x;
}

export function get(d: unknown, path: string): unknown {
  let cur: unknown = d;
  for (const k of path.split(".")) {
    if (!cur || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return val(cur);
}

export type Runtime = { id: string; unit?: string; precisions?: Record<string, unknown> };

export function runtimes(d: Device): Runtime[] {
  return Array.isArray(d.runtimes) ? (d.runtimes as Runtime[]) : [];
}

export function precisions(d: Device): string[] {
  const s = new Set<string>();
  for (const r of runtimes(d)) for (const p of Object.keys(r.precisions ?? {})) s.add(p);
  return [...s];
}

/** One line of key specs: CPU, cores, clock, RAM, accelerator. */
export function keySpecs(d: Device): string {
  const parts: string[] = [];
  const cpu = get(d, "cpu.model");
  const cores = get(d, "cpu.cores");
  const mhz = get(d, "cpu.clock_mhz");
  if (cpu) parts.push(`${cores ? cores + "× " : ""}${cpu}${mhz ? ` @ ${(Number(mhz) / 1000).toFixed(1)} GHz` : ""}`);
  const ram = get(d, "memory.ram_mb");
  if (ram) parts.push(`${Number(ram) >= 1024 ? Number(ram) / 1024 + " GB" : ram + " MB"} RAM`);
  const acc = get(d, "accelerator.name");
  if (acc) parts.push(String(acc));
  return parts.join(" · ");
}

/** The estimator's published error for a device: its leave-one-model-out validation on published
 * measurements (data/estimator/calibration.json), as the server reports it. */
export function estimatorError(d: Device): string | null {
  let e = d.estimator_error as unknown;
  if (Array.isArray(e)) e = e.find((x) => (x as { group?: string })?.group === d.id);
  if (!e || typeof e !== "object") return null;
  const x = e as Record<string, unknown>;
  // One entry per published validation (leave one model / family / source out), or one entry.
  const named: [string, Record<string, unknown>][] = VALIDATIONS.filter(([k]) => x[k] && typeof x[k] === "object").map(([k, label]) => [label, x[k] as Record<string, unknown>]);
  if (named.length) return named.map(([label, v]) => `${label}: ${stats(v)}`).join("; ");
  return stats(x);
}

const VALIDATIONS: [string, string][] = [
  ["lomo", "unseen model"],
  ["lofo", "unseen model family"],
  ["loso", "unseen source"],
];

function stats(x: Record<string, unknown>): string {
  const n = (k: string) => (typeof x[k] === "number" ? (x[k] as number) : undefined);
  const median = n("median_abs_error");
  if (median === undefined) {
    return Object.entries(x)
      .filter(([, v]) => typeof v === "number" || typeof v === "string")
      .map(([k, v]) => `${k}: ${typeof v === "number" ? Number(v).toPrecision(3) : v}`)
      .join(", ");
  }
  const parts = [`median error ${(median * 100).toFixed(0)} %`];
  if (n("within_25") !== undefined) parts.push(`${(n("within_25")! * 100).toFixed(0)} % within ±25 %`);
  if (n("rows") !== undefined) parts.push(`on ${n("rows")} published measurements`);
  return parts.join(", ");
}
