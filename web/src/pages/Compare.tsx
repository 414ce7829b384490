// Two or more experiments side by side: each one's recommendation and its variants' key figures.
import { useQueries, useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { Empty, ErrorBox, Est, Loading, StatusBadge } from "../components/ui";
import { bytes, goalName, ms, pct, points, techniqueName } from "../lib/format";
import { estimateOn } from "../lib/results";
import { Link, navigate, useLocation } from "../lib/router";

export default function ComparePage() {
  const { search } = useLocation();
  const ids = (new URLSearchParams(search).get("ids") ?? "").split(",").filter(Boolean);
  const list = useQuery({ queryKey: ["experiments", "compare"], queryFn: () => api.experiments({ status: "completed", limit: 100 }) });
  const exps = useQueries({ queries: ids.map((id) => ({ queryKey: ["experiment", id], queryFn: () => api.experiment(id) })) });
  const results = useQueries({ queries: ids.map((id) => ({ queryKey: ["results", id], queryFn: () => api.results(id) })) });
  const toggle = (id: string) => {
    const next = ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id];
    navigate(`/compare${next.length ? `?ids=${next.join(",")}` : ""}`, true);
  };
  const techniques = [...new Set(results.flatMap((r) => r.data?.results.map((x) => x.technique) ?? []))];
  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-semibold">Compare experiments</h1>
      <fieldset className="card">
        <legend className="text-sm font-semibold">Completed experiments</legend>
        {list.isPending && <Loading what="experiments" />}
        {list.isError && <ErrorBox error={list.error} />}
        {list.data?.items.length === 0 && <p className="muted">No completed experiment yet.</p>}
        <div className="mt-2 flex flex-wrap gap-3">
          {list.data?.items.map((e) => (
            <label key={e.id} className="flex items-center gap-1 text-sm">
              <input type="checkbox" checked={ids.includes(e.id)} onChange={() => toggle(e.id)} /> {e.name} <span className="muted">({e.target_device})</span>
            </label>
          ))}
        </div>
      </fieldset>
      {ids.length < 2 && <Empty>Pick two or more experiments to see them side by side (for example the same model on two devices).</Empty>}
      {ids.length > 0 && (
        <div className="relative overflow-x-auto" role="region" aria-label="Comparison (scrolls sideways)" tabIndex={0}>
          <table className="w-full min-w-[40rem]" data-testid="compare-table">
            <thead>
              <tr>
                <th className="th">Variant</th>
                {exps.map((q, i) => (
                  <th key={ids[i]} className="th normal-case">
                    {q.data ? (
                      <>
                        <Link to={`/experiments/${ids[i]}`} className="text-sky-800 underline dark:text-sky-300">
                          {q.data.name}
                        </Link>{" "}
                        <StatusBadge status={q.data.status} />
                        <span className="block font-normal">
                          {q.data.target_device} · {goalName(q.data.optimization_goal)}
                        </span>
                        <span className="block font-normal">recommends {q.data.recommended_technique ? techniqueName(q.data.recommended_technique) : "—"}</span>
                      </>
                    ) : q.isError ? (
                      <ErrorBox error={q.error} />
                    ) : (
                      "…"
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {techniques.map((t) => (
                <tr key={t} className="border-t border-slate-200 dark:border-slate-800">
                  <th scope="row" className="td text-left font-medium">
                    {techniqueName(t)}
                  </th>
                  {results.map((q, i) => {
                    const row = q.data?.results.find((x) => x.technique === t);
                    if (q.isError) return <td key={ids[i]} className="td"><ErrorBox error={q.error} /></td>;
                    if (!row || row.status !== "completed") return <td key={ids[i]} className="td">{row ? row.status : "—"}</td>;
                    const est = estimateOn(row, q.data?.target_device);
                    return (
                      <td key={ids[i]} className="td">
                        {pct(row.optimized_accuracy)} {t !== "fp32" && <span className="text-xs">({points(row.accuracy_drop_points)})</span>}
                        <span className="block text-xs">{bytes(row.size_bytes)}</span>
                        <span className="block text-xs">
                          {est ? (
                            <>
                              {ms(est.latency_ms)} on {est.device} <Est />
                            </>
                          ) : (
                            "—"
                          )}
                        </span>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
