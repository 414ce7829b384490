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

/** The estimator's published error for a device (MAPE-like figures), as a short text. */
export function estimatorError(d: Device): string | null {
  const e = d.estimator_error as Record<string, unknown> | null | undefined;
  if (!e || typeof e !== "object") return null;
  const pick = (k: string) => (typeof e[k] === "number" ? (e[k] as number) : undefined);
  const mape = pick("mape_pct") ?? pick("mape") ?? pick("median_ape_pct") ?? pick("mean_abs_pct_error");
  const n = pick("n") ?? pick("count") ?? pick("points");
  if (mape !== undefined) return `±${mape.toFixed(0)} % mean error${n !== undefined ? ` on ${n} published measurements` : ""}`;
  return Object.entries(e)
    .filter(([, v]) => typeof v === "number" || typeof v === "string")
    .map(([k, v]) => `${k}: ${typeof v === "number" ? Number(v).toPrecision(3) : v}`)
    .join(", ");
}
