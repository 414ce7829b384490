// Units and number formatting shared by every page (one place, so a size is the same everywhere).

/** Bytes as B / kB / MB / GB (decimal units, as the server's *_mb fields). */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs < 1000) return `${Math.round(n)} B`;
  if (abs < 1e6) return `${trim(n / 1e3)} kB`;
  if (abs < 1e9) return `${trim(n / 1e6)} MB`;
  return `${trim(n / 1e9)} GB`;
}

/** Three significant figures, without a trailing ".0". */
export function trim(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return "—";
  if (x === 0) return "0";
  const s = Math.abs(x) >= 10 ** digits ? x.toFixed(0) : x.toPrecision(digits);
  return s.includes("e") ? x.toFixed(0) : s.replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** Counts as 1.23 k / 4.56 M / 7.89 G (params, MACs). */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs < 1e3) return String(Math.round(n));
  if (abs < 1e6) return `${trim(n / 1e3)} k`;
  if (abs < 1e9) return `${trim(n / 1e6)} M`;
  return `${trim(n / 1e9)} G`;
}

/** Milliseconds: µs below 1 ms, s above 10 s. */
export function ms(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  if (x < 1) return `${trim(x * 1000)} µs`;
  if (x >= 10000) return `${trim(x / 1000)} s`;
  return `${trim(x)} ms`;
}

/** Percent with fixed decimals (accuracy: 2). */
export function pct(x: number | null | undefined, decimals = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return `${x.toFixed(decimals)} %`;
}

/** A signed drop: "−0.42 pt" is a gain; a drop is shown as a positive number of points. */
export function points(x: number | null | undefined, decimals = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  const v = Math.abs(x) < 0.5 * 10 ** -decimals ? 0 : x;
  return `${v < 0 ? "−" : ""}${Math.abs(v).toFixed(decimals)} pt`;
}

/** Seconds as "42 s", "3 min 5 s", "1 h 2 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A technique id as people read it. */
const TECHNIQUE_NAMES: Record<string, string> = {
  fp32: "Baseline (fp32)",
  ptq_int8: "Post-training int8",
  ptq_int4: "Post-training int4",
  prune_unstructured: "Unstructured pruning",
  prune_structured: "Structured pruning",
  qat_int8: "Quantization-aware int8",
  distillation: "Distillation",
  hybrid: "Prune + int8",
  hybrid_int4: "Prune + int4",
};
export function techniqueName(id: string): string {
  return TECHNIQUE_NAMES[id] ?? id;
}

export function goalName(goal: string | null | undefined): string {
  switch (goal) {
    case "minimize_size":
    case "size":
      return "Smallest size";
    case "maximize_speed":
    case "minimize_latency":
    case "speed":
      return "Lowest latency";
    case "maximize_accuracy":
    case "accuracy":
      return "Highest accuracy";
    case "balanced":
      return "Balanced";
    default:
      return goal ?? "—";
  }
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
