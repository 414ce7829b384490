// The results view: the recommendation first, what-if, the variant table, trade-off charts, per
// class, per device. The experiment page feeds it from the server; `edgeopt report` from the
// results.json embedded in the report (web/src/report).
import { memo, useDeferredValue, useEffect, useMemo, useRef, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import type { Recommendations, ResultRow, Results, WhatIf } from "../api/client";
import { ErrorBox, Est, SelectField, TextField } from "./ui";
import { TradeoffChart } from "./Charts";
import { PerClassView } from "./PerClass";
import { bytes, count, goalName, ms, pct, points, techniqueName, trim } from "../lib/format";
import { chartPoints, estimateOn, estimates, hostLatency } from "../lib/results";
import { rank, type RawResults } from "../lib/rank";
import type { PerClassResults } from "../lib/perclass";
import { GOALS } from "../lib/queries";

type WhatIfForm = { goal: string; device: string; drop: string; size: string; latency: string };

function num(s: string): number | null {
  if (s.trim() === "") return null;
  const v = Number(s);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

/** Where the results view gets its data: the server (the experiment page) or the embedded
 * results.json (`edgeopt report`). */
export type ResultsSource = {
  id: string;
  results: Results;
  /** The run's settings: optimization_goal, target_device, max_* (as an experiment's config). */
  config: Record<string, unknown>;
  devices: { id: string; name: string }[];
  /** The ranking for the run's settings (null) or a what-if. */
  recommend: (body: WhatIf | null) => Promise<Recommendations>;
  /** How the full answer is named next to its time ("the server's answer"). */
  answerLabel: string;
  downloadUrl?: (technique: string) => string;
};

export function ResultsView({ source }: { source: ResultsSource }) {
  const cfg = source.config;
  const devices = { data: source.devices };
  const initial: WhatIfForm = {
    goal: String(cfg.optimization_goal ?? "balanced"),
    device: String(cfg.target_device ?? ""),
    drop: cfg.max_accuracy_drop_points != null ? String(cfg.max_accuracy_drop_points) : "",
    size: cfg.max_size_mb != null ? String(cfg.max_size_mb) : "",
    latency: cfg.max_latency_ms != null ? String(cfg.max_latency_ms) : "",
  };
  const [form, setForm] = useState<WhatIfForm>(initial);
  const changed = JSON.stringify(form) !== JSON.stringify(initial);
  const body: WhatIf = {
    optimization_goal: form.goal as WhatIf["optimization_goal"],
    target_device: form.device || undefined,
    max_accuracy_drop_points: num(form.drop),
    max_size_mb: num(form.size),
    max_latency_ms: num(form.latency),
  };
  const t0 = useRef(0);
  const recs = useQuery({
    queryKey: ["recs", source.id, changed ? body : null],
    queryFn: () => source.recommend(changed ? body : null),
    placeholderData: keepPreviousData,
  });
  // The browser ranks at once (lib/rank.ts, the engine's ranking); the server's answer, with its
  // full reasoning, replaces it when it arrives.
  const [updateMs, setUpdateMs] = useState<number | null>(null);
  const [serverMs, setServerMs] = useState<number | null>(null);
  useEffect(() => {
    if (t0.current) setUpdateMs(performance.now() - t0.current);
  }, [form]);
  useEffect(() => {
    if (t0.current && recs.data && !recs.isPlaceholderData) {
      setServerMs(performance.now() - t0.current);
      t0.current = 0;
    }
  }, [recs.data, recs.isPlaceholderData]);
  const set = (k: keyof WhatIfForm, v: string) => {
    t0.current = performance.now();
    setForm({ ...form, [k]: v });
  };
  const raw = source.results.raw as unknown as RawResults | undefined;
  const local = useMemo(() => {
    if (!raw?.baseline || !Array.isArray(raw.variants)) return null;
    try {
      return rank(raw, form.goal, form.device || String(cfg.target_device ?? ""), {
        dropPoints: num(form.drop),
        dropRelative: typeof cfg.max_accuracy_drop_relative_pct === "number" ? cfg.max_accuracy_drop_relative_pct : null,
        sizeMb: num(form.size),
        latencyMs: num(form.latency),
        memoryMb: typeof cfg.max_memory_mb === "number" ? cfg.max_memory_mb : null,
      });
    } catch {
      return null;
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [raw, form]);

  const serverRec = recs.data?.recommendation as RecommendationJson | undefined;
  const fresh = !!serverRec && !recs.isPlaceholderData;
  const pending = changed && !fresh && local !== null;
  const rec: RecommendationJson | undefined = pending
    ? { technique: local.technique, score: local.score, confidence: local.confidence, meets_limits: local.meetsLimits, goal: form.goal, reasoning: "", relaxations: [], notes: [] }
    : serverRec;
  // The pick updates at once; the table and charts below follow in a deferred render.
  const later = useDeferredValue(form);
  const laterPick = useDeferredValue(rec?.technique);
  const r0 = source.results;
  const laterDevice = later.device || r0?.target_device || "";
  const sizePoints = useMemo(() => (r0 ? chartPoints(r0.results, (x) => (x.size_bytes ?? 0) / 1e6, laterPick) : []), [r0, laterPick]);
  const latencyPoints = useMemo(
    () =>
      r0
        ? chartPoints(
            r0.results,
            (x) => estimateOn(x, laterDevice)?.latency_ms,
            laterPick,
            (x) => {
              const e = estimateOn(x, laterDevice);
              return e ? [e.latency_ms_low, e.latency_ms_high] : undefined;
            },
          )
        : [],
    [r0, laterPick, laterDevice],
  );
  const r = source.results;

  const device = form.device || r.target_device || "";
  const deviceName = devices.data?.find((d) => d.id === device)?.name ?? device;
  const laterDeviceName = devices.data?.find((d) => d.id === laterDevice)?.name ?? laterDevice;
  const baseline = r.results.find((x) => x.technique === "fp32");
  const floor = baseline?.original_accuracy !== undefined && num(later.drop) !== null ? baseline.original_accuracy - num(later.drop)! : null;
  return (
    <>
      <section className="card space-y-3 border-sky-300 dark:border-sky-800" aria-labelledby="rec-title" data-testid="recommendation">
        <h2 id="rec-title" className="text-lg font-semibold">
          Recommendation{changed && " (what if)"}
        </h2>
        {recs.isError && <ErrorBox error={recs.error} title="Cannot rank with these settings" />}
        {rec && <RecommendationBody rec={rec} deviceName={deviceName} pending={pending} />}
        <fieldset className="grid gap-2 border-t border-slate-200 pt-3 sm:grid-cols-2 lg:grid-cols-5 dark:border-slate-800" data-testid="what-if">
          <legend className="text-sm font-semibold">What if… (ranks the measured variants again, no re-run)</legend>
          <SelectField id="wi-goal" label="Goal" value={form.goal} onChange={(v) => set("goal", v)} options={GOALS.map((g) => [g, goalName(g)])} />
          <SelectField id="wi-device" label="Device" value={form.device} onChange={(v) => set("device", v)} options={(devices.data ?? []).map((d) => [d.id, d.name])} />
          <TextField id="wi-drop" label="Max drop (pt)" inputMode="decimal" value={form.drop} onChange={(v) => set("drop", v)} />
          <TextField id="wi-size" label="Max size (MB)" inputMode="decimal" value={form.size} onChange={(v) => set("size", v)} />
          <TextField id="wi-latency" label="Max latency (ms, est.)" inputMode="decimal" value={form.latency} onChange={(v) => set("latency", v)} />
          <div className="flex items-center gap-3 text-xs sm:col-span-2 lg:col-span-5">
            {changed && (
              <button type="button" className="btn-secondary" onClick={() => setForm(initial)}>
                Back to the run's settings
              </button>
            )}
            {updateMs !== null && (
              <span data-testid="whatif-ms" data-ms={updateMs.toFixed(1)}>
                ranked in the browser in {updateMs.toFixed(0)} ms
              </span>
            )}
            {serverMs !== null && (
              <span data-testid="whatif-server-ms" data-ms={serverMs.toFixed(1)}>
                · {source.answerLabel} in {serverMs.toFixed(0)} ms
              </span>
            )}
          </div>
        </fieldset>
        {recs.data && <Ranking recs={recs.data} />}
      </section>
      <VariantTable results={r} device={laterDevice} deviceName={laterDeviceName} recommended={laterPick} downloadUrl={source.downloadUrl} />
      <div className="grid gap-4 lg:grid-cols-2">
        <TradeoffChart title="Accuracy vs size on disk" xLabel="MB" points={sizePoints} xLimit={num(later.size)} yLimit={floor} />
        <TradeoffChart title={`Accuracy vs latency on ${laterDeviceName}`} xLabel="ms (estimated)" estimate points={latencyPoints} xLimit={num(later.latency)} yLimit={floor} />
      </div>
      <PerClassView raw={raw as unknown as PerClassResults} recommended={serverRec?.technique} />
      <DeviceComparison rows={r.results} initial={serverRec?.technique ?? "fp32"} devices={source.devices} />
      <p className="muted text-xs">{r.estimates_note}</p>
    </>
  );
}

type RecommendationJson = {
  technique: string;
  score: number;
  confidence: number;
  meets_limits: boolean;
  goal: string;
  reasoning: string;
  relaxations: { technique: string; text: string }[];
  notes: string[];
};

function RecommendationBody({ rec, deviceName, pending }: { rec: RecommendationJson; deviceName: string; pending?: boolean }) {
  return (
    <div className="space-y-2">
      <p className="text-xl">
        <strong data-testid="recommended-technique">{techniqueName(rec.technique)}</strong> <code className="text-sm">{rec.technique}</code>
        <span className="ml-2 text-sm">
          for {goalName(rec.goal)} on {deviceName} · confidence {Math.round(rec.confidence * 100)} %
        </span>
      </p>
      {!rec.meets_limits && (
        <p className="rounded bg-amber-100 p-2 text-sm text-amber-900 dark:bg-amber-900 dark:text-amber-100">No variant meets every limit: this is the closest.</p>
      )}
      <p className="text-sm" data-testid="reasoning">
        {pending ? "Ranked in the browser from the measured variants; the server's reasoning follows…" : rec.reasoning}
      </p>
      {rec.relaxations?.length > 0 && (
        <div>
          <h3 className="text-sm font-semibold">What a relaxed limit would buy</h3>
          <ul className="list-disc pl-5 text-sm" data-testid="relaxations">
            {rec.relaxations.map((x) => (
              <li key={x.technique + x.text}>{x.text}</li>
            ))}
          </ul>
        </div>
      )}
      {rec.notes?.length > 0 && (
        <ul className="muted list-disc pl-5">
          {rec.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Ranking({ recs }: { recs: Recommendations }) {
  return (
    <details>
      <summary className="cursor-pointer text-sm font-medium">The whole ranking ({recs.recommendations.length})</summary>
      <ol className="mt-2 space-y-1 text-sm">
        {recs.recommendations.map((x) => (
          <li key={x.technique_name}>
            <strong>
              {x.rank}. {techniqueName(x.technique_name)}
            </strong>{" "}
            score {trim(x.score)} {x.feasible === false && <span className="text-red-800 dark:text-red-300">(breaks a limit)</span>}
            {x.pareto && " · Pareto"} — <span className="muted">{x.reasoning}</span>
          </li>
        ))}
      </ol>
    </details>
  );
}

const VariantTable = memo(function VariantTable({
  results,
  device,
  deviceName,
  recommended,
  downloadUrl,
}: {
  results: Results;
  device: string;
  deviceName: string;
  recommended?: string;
  downloadUrl?: (technique: string) => string;
}) {
  return (
    <section className="card" aria-labelledby="variants-title">
      <h2 id="variants-title" className="mb-2 text-lg font-semibold">
        Every variant
      </h2>
      <p className="muted mb-2">
        Accuracy, sizes, params, MACs and host latency were measured by EdgeOpt on the machine that ran it
        {results.results[0]?.test_samples ? ` (${results.results[0].test_samples} test images)` : ""}; columns marked <Est /> are estimates for {deviceName}.
      </p>
      <div className="relative overflow-x-auto" tabIndex={0} role="region" aria-label="Variant table (scrolls sideways)">
        <table className="w-full min-w-[64rem]" data-testid="variant-table">
          <thead>
            <tr>
              <th className="th">Variant</th>
              <th className="th">Accuracy (95 % CI)</th>
              <th className="th">Drop</th>
              <th className="th">Size / gzip</th>
              <th className="th">Params</th>
              <th className="th">MACs</th>
              <th className="th">Host p50 / p95</th>
              <th className="th">
                Latency on device <Est />
              </th>
              <th className="th">
                Memory <Est />
              </th>
              {downloadUrl && <th className="th">Package</th>}
            </tr>
          </thead>
          <tbody>
            {results.results.map((row) => (
              <VariantRow key={row.technique} row={row} device={device} recommended={row.technique === recommended} downloadUrl={downloadUrl} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
});

function VariantRow({ row, device, recommended, downloadUrl }: { row: ResultRow; device: string; recommended: boolean; downloadUrl?: (technique: string) => string }) {
  const ok = row.status === "completed";
  const est = estimateOn(row, device);
  const host = hostLatency(row);
  const ci = row.accuracy_ci95;
  return (
    <tr className={`border-t border-slate-200 dark:border-slate-800 ${recommended ? "bg-sky-50 dark:bg-sky-950" : ""}`} data-testid={`row-${row.technique}`}>
      <td className="td">
        <span className="font-medium">
          {recommended && <span aria-label="recommended">★ </span>}
          {techniqueName(row.technique)}
        </span>
        <span className="block text-xs text-slate-600 dark:text-slate-400">
          {row.technique} · {row.precision || row.status}
        </span>
        {!ok && <span className="block text-xs text-red-800 dark:text-red-300">{row.status}{row.error ? `: ${row.error}` : ""}</span>}
      </td>
      <td className="td">
        {ok ? (
          <>
            {pct(row.optimized_accuracy)}
            {ci && ci.length === 2 && (
              <span className="block text-xs text-slate-600 dark:text-slate-400">
                {(ci[0] * 100).toFixed(1)}–{(ci[1] * 100).toFixed(1)} %
              </span>
            )}
          </>
        ) : (
          "—"
        )}
      </td>
      <td className="td">
        {ok && row.technique !== "fp32" ? (
          <>
            {points(row.accuracy_drop_points)}
            <span className="block text-xs text-slate-600 dark:text-slate-400">{pct(row.accuracy_drop_relative_pct)} relative</span>
          </>
        ) : (
          "—"
        )}
      </td>
      <td className="td">
        {bytes(row.size_bytes)}
        <span className="block text-xs text-slate-600 dark:text-slate-400">gzip {bytes(row.size_gzip_bytes)}</span>
      </td>
      <td className="td">
        {count(row.params)}
        {row.nonzero_params !== undefined && row.params !== undefined && row.nonzero_params < row.params && (
          <span className="block text-xs text-slate-600 dark:text-slate-400">{count(row.nonzero_params)} non-zero</span>
        )}
      </td>
      <td className="td">{count(row.macs)}</td>
      <td className="td">
        {host ? `${ms(host.p50)} / ${ms(host.p95)}` : "—"}
        {(row as { host_latency_unstable?: boolean }).host_latency_unstable && (
          <span className="block text-xs text-amber-900 dark:text-amber-200" title="the timing rounds disagreed by more than 1.3x: the machine was busy, these host figures may be off">
            unstable: busy machine
          </span>
        )}
      </td>
      <td className="td" data-testid="device-latency">
        {est ? (
          <>
            {ms(est.latency_ms)} <Est />
            <span className="block text-xs text-slate-600 dark:text-slate-400">
              {ms(est.latency_ms_low)}–{ms(est.latency_ms_high)}
              {est.runtime && ` · ${est.runtime}`}
            </span>
          </>
        ) : (
          "—"
        )}
      </td>
      <td className="td">
        {est ? (
          <>
            {bytes(est.peak_memory_bytes)} <span className={est.fits_in_memory === false ? "text-red-800 dark:text-red-300" : ""}>{est.fits_in_memory === false ? "does not fit" : "fits"}</span>
          </>
        ) : (
          "—"
        )}
      </td>
      {downloadUrl && (
        <td className="td">
          {ok ? (
            <a className="btn-secondary" href={downloadUrl(row.technique)} download data-testid={`download-${row.technique}`}>
              Download <span className="sr-only">{row.technique}</span>
            </a>
          ) : (
            "—"
          )}
        </td>
      )}
    </tr>
  );
}

const DeviceComparison = memo(function DeviceComparison({ rows, initial, devices: list0 }: { rows: ResultRow[]; initial: string; devices: { id: string; name: string }[] }) {
  const done = rows.filter((r) => r.status === "completed");
  const [pick, setPick] = useState<string | null>(null);
  const devices = { data: list0 };
  const row = done.find((r) => r.technique === (pick ?? initial)) ?? done[0];
  const list = useMemo(() => (row ? [...estimates(row)].sort((a, b) => (a.error ? 1 : 0) - (b.error ? 1 : 0) || a.latency_ms - b.latency_ms) : []), [row]);
  if (!row) return null;
  return (
    <section className="card" aria-labelledby="devcmp-title">
      <div className="mb-2 flex flex-wrap items-end gap-3">
        <h2 id="devcmp-title" className="text-lg font-semibold">
          One variant on every device <Est />
        </h2>
        <div>
          <label htmlFor="devcmp-variant" className="label">
            Variant
          </label>
          <select id="devcmp-variant" className="input" value={row.technique} onChange={(e) => setPick(e.target.value)}>
            {done.map((r) => (
              <option key={r.technique} value={r.technique}>
                {techniqueName(r.technique)}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div className="relative overflow-x-auto">
        <table className="w-full min-w-[40rem]" data-testid="device-comparison">
          <thead>
            <tr>
              <th className="th">Device</th>
              <th className="th">Runtime</th>
              <th className="th">Latency (interval)</th>
              <th className="th">Peak memory</th>
              <th className="th">Energy per image</th>
            </tr>
          </thead>
          <tbody>
            {list.map((e) =>
              e.error ? (
                <tr key={e.device} className="border-t border-slate-200 dark:border-slate-800">
                  <td className="td">{devices.data?.find((d) => d.id === e.device)?.name ?? e.device}</td>
                  <td className="td text-red-800 dark:text-red-300" colSpan={4}>
                    no estimate: {typeof e.error === "string" ? e.error : JSON.stringify(e.error)}
                  </td>
                </tr>
              ) : (
              <tr key={e.device} className="border-t border-slate-200 dark:border-slate-800">
                <td className="td">{devices.data?.find((d) => d.id === e.device)?.name ?? e.device}</td>
                <td className="td">
                  {e.runtime} {e.precision && `(${e.precision})`}
                </td>
                <td className="td">
                  {ms(e.latency_ms)} <span className="text-xs">({ms(e.latency_ms_low)}–{ms(e.latency_ms_high)})</span>
                </td>
                <td className="td">
                  {bytes(e.peak_memory_bytes)} {e.fits_in_memory === false && <span className="text-red-800 dark:text-red-300">does not fit</span>}
                </td>
                <td className="td">{e.energy_mj !== undefined ? `${trim(e.energy_mj)} mJ` : "—"}</td>
              </tr>
              ),
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
});
