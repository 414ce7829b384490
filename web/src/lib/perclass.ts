// Per-class accuracy and confusion matrices from results.json (as `edgeopt optimize` writes it
// and the API returns it in `raw`): which classes a technique hurt.
//
// The data contract is data/api/openapi.json's (ClassInfo, PerClass):
//   results.classes            [{index, name}]   output index → class name
//   baseline.per_class,
//   variants[i].per_class      {support, correct, accuracy, confusion}, confusion[true][predicted]
import type { components } from "../api/schema";

export type ClassInfo = components["schemas"]["ClassInfo"];
export type PerClass = components["schemas"]["PerClass"];
export type PerClassVariant = { technique: string; status?: string; per_class?: PerClass | null };
export type PerClassResults = { classes?: ClassInfo[] | null; baseline?: PerClassVariant | null; variants?: PerClassVariant[] | null };

/** A per_class record that is whole and consistent, or null (older runs have none). */
export function validPerClass(p: unknown, n?: number): PerClass | null {
  if (!p || typeof p !== "object") return null;
  const x = p as PerClass;
  if (!Array.isArray(x.support) || !Array.isArray(x.correct) || !Array.isArray(x.accuracy) || !Array.isArray(x.confusion)) return null;
  const k = n ?? x.support.length;
  if (k === 0 || x.support.length !== k || x.correct.length !== k || x.accuracy.length !== k || x.confusion.length !== k) return null;
  if (!x.confusion.every((row) => Array.isArray(row) && row.length === k)) return null;
  return x;
}

/** The class list: the recorded names by output index, else "class i" for each index. */
export function classList(r: PerClassResults): ClassInfo[] {
  const base = validPerClass(r.baseline?.per_class);
  const n = base?.support.length ?? 0;
  const named = new Map<number, string>();
  for (const c of r.classes ?? []) if (c && Number.isInteger(c.index) && typeof c.name === "string") named.set(c.index, c.name);
  const k = Math.max(n, ...[...named.keys()].map((i) => i + 1), 0);
  return Array.from({ length: k }, (_, i) => ({ index: i, name: named.get(i) ?? `class ${i}` }));
}

/** Variants (completed, with per-class data) that can be compared with the baseline. */
export function comparable(r: PerClassResults): string[] {
  const n = classList(r).length;
  if (!validPerClass(r.baseline?.per_class, n)) return [];
  return (r.variants ?? []).filter((v) => (v.status ?? "completed") === "completed" && validPerClass(v.per_class, n)).map((v) => v.technique);
}

export function hasPerClass(r: PerClassResults | null | undefined): boolean {
  return !!r && !!validPerClass(r.baseline?.per_class, classList(r).length);
}

export type ClassRow = {
  index: number;
  name: string;
  support: number;
  baseline: number | null; // accuracy in %, null when the class has no test image
  variant: number | null;
  delta: number | null; // variant − baseline, in points
};

/** One row per class: baseline and variant accuracy (%), and the change in points. */
export function classRows(r: PerClassResults, technique: string): ClassRow[] {
  const classes = classList(r);
  const b = validPerClass(r.baseline?.per_class, classes.length);
  const v = validPerClass((r.variants ?? []).find((x) => x.technique === technique)?.per_class, classes.length);
  if (!b) return [];
  const acc = (p: PerClass | null, i: number) => {
    if (!p) return null;
    if (p.support[i] > 0) return (100 * p.correct[i]) / p.support[i];
    return null;
  };
  return classes.map((c) => {
    const base = acc(b, c.index);
    const va = acc(v, c.index);
    return { index: c.index, name: c.name, support: b.support[c.index], baseline: base, variant: va, delta: base !== null && va !== null ? va - base : null };
  });
}

/** The classes a variant hurt most: drops of at least `minPoints`, worst first. */
export function worstClasses(rows: ClassRow[], minPoints = 0.5, limit = 3): ClassRow[] {
  return rows
    .filter((r) => r.delta !== null && r.delta <= -minPoints)
    .sort((a, b) => a.delta! - b.delta! || a.index - b.index)
    .slice(0, limit);
}

export type Cell = { count: number; share: number; base: number; change: number };

/** A variant's confusion matrix, each cell with its share of the true class's images (0..1, the
 * heat) and the change in count against the baseline's matrix. */
export function confusionCells(r: PerClassResults, technique: string): Cell[][] | null {
  const n = classList(r).length;
  const b = validPerClass(r.baseline?.per_class, n);
  const v = technique === r.baseline?.technique ? b : validPerClass((r.variants ?? []).find((x) => x.technique === technique)?.per_class, n);
  if (!b || !v) return null;
  return v.confusion.map((row, t) => {
    const total = row.reduce((s, x) => s + x, 0);
    return row.map((count, p) => ({ count, share: total > 0 ? count / total : 0, base: b.confusion[t][p], change: count - b.confusion[t][p] }));
  });
}

/** The biggest new confusions (off-diagonal cells that grew most against the baseline). */
export function newConfusions(cells: Cell[][], classes: ClassInfo[], limit = 3): { truth: string; predicted: string; change: number }[] {
  const out: { truth: string; predicted: string; change: number }[] = [];
  cells.forEach((row, t) =>
    row.forEach((c, p) => {
      if (t !== p && c.change > 0) out.push({ truth: classes[t].name, predicted: classes[p].name, change: c.change });
    }),
  );
  return out.sort((a, b) => b.change - a.change).slice(0, limit);
}
