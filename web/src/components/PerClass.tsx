// Per class: each class's accuracy for the baseline and a chosen variant (with the change), and the
// variant's confusion matrix as a heat grid, each cell with its change against the baseline.
// Colour is never the only cue: every cell prints its count and change, drops carry ▼ and a word.
import { memo, useMemo, useState } from "react";
import { classList, classRows, comparable, confusionCells, hasPerClass, newConfusions, worstClasses, type PerClassResults } from "../lib/perclass";
import { pct, points, techniqueName } from "../lib/format";

// Discrete heat steps (share of the true class's images), each readable with its text colour.
const HEAT: [number, string][] = [
  [0.5, "bg-sky-800 text-white dark:bg-sky-700"],
  [0.2, "bg-sky-300 text-slate-900 dark:bg-sky-800 dark:text-white"],
  [0.05, "bg-sky-200 text-slate-900 dark:bg-sky-900 dark:text-white"],
  [1e-12, "bg-sky-100 text-slate-900 dark:bg-sky-950 dark:text-white"],
];
const heat = (share: number) => HEAT.find(([t]) => share >= t)?.[1] ?? "text-slate-700 dark:text-slate-300";

function signed(n: number): string {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "±0";
}

export const PerClassView = memo(function PerClassView({ raw, recommended }: { raw: PerClassResults | null | undefined; recommended?: string }) {
  const ok = hasPerClass(raw);
  const options = useMemo(() => (raw && ok ? comparable(raw) : []), [raw, ok]);
  const [pick, setPick] = useState<string | null>(null);
  const technique = pick && options.includes(pick) ? pick : recommended && options.includes(recommended) ? recommended : options[0];
  const classes = useMemo(() => (raw && ok ? classList(raw) : []), [raw, ok]);
  const rows = useMemo(() => (raw && technique ? classRows(raw, technique) : []), [raw, technique]);
  const cells = useMemo(() => (raw && technique ? confusionCells(raw, technique) : null), [raw, technique]);
  const worst = worstClasses(rows);
  const confusions = cells ? newConfusions(cells, classes) : [];
  return (
    <section className="card space-y-3" aria-labelledby="perclass-title" data-testid="per-class">
      <div className="flex flex-wrap items-end gap-3">
        <h2 id="perclass-title" className="text-lg font-semibold">
          Per class
        </h2>
        {options.length > 0 && (
          <div>
            <label htmlFor="perclass-variant" className="label">
              Variant against the baseline
            </label>
            <select id="perclass-variant" className="input" value={technique} onChange={(e) => setPick(e.target.value)}>
              {options.map((t) => (
                <option key={t} value={t}>
                  {techniqueName(t)}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {!ok ? (
        <p className="muted" data-testid="per-class-missing">
          Per-class accuracy was not recorded for this run (runs made before EdgeOpt recorded it have only the overall accuracy).
        </p>
      ) : !technique ? (
        <p className="muted">No finished variant has per-class figures to compare with the baseline.</p>
      ) : (
        <>
          <p className="text-sm" data-testid="per-class-summary">
            {worst.length > 0 ? (
              <>
                {techniqueName(technique)} is less accurate than the baseline on {worst.map((w) => `${w.name} (${points(w.delta, 1)})`).join(", ")}.
              </>
            ) : (
              <>No class lost 0.5 pt or more with {techniqueName(technique)}.</>
            )}
            {confusions.length > 0 && <> Most new confusions: {confusions.map((c) => `${c.truth} taken for ${c.predicted} (${signed(c.change)})`).join("; ")}.</>}
            <span className="muted block">Measured on the test split; a class with few test images moves a lot with one image.</span>
          </p>
          <div className="relative overflow-x-auto" tabIndex={0} role="region" aria-label="Per-class accuracy (scrolls sideways)">
            <table className="w-full min-w-[32rem]" data-testid="per-class-table">
              <caption className="sr-only">Accuracy of each class for the baseline and {techniqueName(technique)}, and the change in points</caption>
              <thead>
                <tr>
                  <th scope="col" className="th">
                    Output
                  </th>
                  <th scope="col" className="th">
                    Class
                  </th>
                  <th scope="col" className="th">
                    Test images
                  </th>
                  <th scope="col" className="th">
                    Baseline
                  </th>
                  <th scope="col" className="th">
                    {techniqueName(technique)}
                  </th>
                  <th scope="col" className="th">
                    Change
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.index} className="border-t border-slate-200 dark:border-slate-800" data-testid={`class-${r.index}`}>
                    <td className="td font-mono">{r.index}</td>
                    <th scope="row" className="td text-left font-medium">
                      {r.name}
                    </th>
                    <td className="td">{r.support}</td>
                    <td className="td">{r.baseline === null ? "—" : pct(r.baseline, 1)}</td>
                    <td className="td">{r.variant === null ? "—" : pct(r.variant, 1)}</td>
                    <td className="td">
                      {r.delta === null ? (
                        "—"
                      ) : r.delta <= -0.05 ? (
                        <span className="font-semibold text-red-800 dark:text-red-300">▼ {points(-r.delta, 1)} lower</span>
                      ) : r.delta >= 0.05 ? (
                        <span className="text-emerald-800 dark:text-emerald-300">▲ {points(r.delta, 1)} higher</span>
                      ) : (
                        "same"
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {cells && <ConfusionGrid cells={cells} names={classes.map((c) => c.name)} technique={technique} />}
        </>
      )}
    </section>
  );
});

function ConfusionGrid({ cells, names, technique }: { cells: ReturnType<typeof confusionCells> & object; names: string[]; technique: string }) {
  return (
    <figure>
      <figcaption className="mb-1 text-sm font-semibold">
        Confusion matrix of {techniqueName(technique)}: rows are the true class, columns the predicted one
      </figcaption>
      <div className="relative overflow-x-auto" tabIndex={0} role="region" aria-label="Confusion matrix (scrolls sideways)">
        <table className="border-collapse text-xs" data-testid="confusion-matrix">
          <caption className="sr-only">
            Images of each true class (rows) predicted as each class (columns) by {techniqueName(technique)}, with the change against the baseline in brackets
          </caption>
          <thead>
            <tr>
              <th scope="col" className="th">
                true ↓ / predicted →
              </th>
              {names.map((n, i) => (
                <th key={i} scope="col" className="th max-w-[6rem] truncate normal-case" title={`output ${i}: ${n}`}>
                  {n}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {cells.map((row, t) => (
              <tr key={t}>
                <th scope="row" className="th max-w-[8rem] truncate normal-case" title={`output ${t}: ${names[t]}`}>
                  {names[t]}
                </th>
                {row.map((c, p) => (
                  <td
                    key={p}
                    className={`h-10 min-w-[3.25rem] border border-slate-200 px-1 text-center tabular-nums dark:border-slate-800 ${heat(c.share)} ${t === p ? "font-bold" : ""}`}
                    title={`${names[t]} predicted as ${names[p]}: ${c.count} images (${(c.share * 100).toFixed(1)} % of ${names[t]}); baseline ${c.base}`}
                  >
                    {c.count}
                    {c.change !== 0 && <span className="block text-[0.65rem] leading-tight">({signed(c.change)})</span>}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted mt-1 text-xs">
        Darker: a larger share of the true class's images (steps at 5, 20 and 50 %). The diagonal (bold) is correct. In brackets: more (+) or fewer (−) images than the baseline
        had in that cell.
      </p>
    </figure>
  );
}
