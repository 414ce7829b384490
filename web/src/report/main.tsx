// `edgeopt report`: one self-contained HTML file with the results view of a CLI run. The data is
// the results.json that the command embeds in <script id="edgeopt-results">; no request leaves
// the page (what-if ranks in the browser).
import { StrictMode, useMemo } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ResultsView } from "../components/ResultsView";
import { dateTime } from "../lib/format";
import { estimatedDevices, localRecommendations, resultsFromRaw } from "../lib/report";
import "../index.css";

type Payload = { results: Record<string, unknown>; results_dir?: string; generated_at?: string; device?: string; devices?: { id: string; name: string }[]; edgeopt?: string };

// The engine's goal names (results.json) as the what-if form spells them.
const GOAL_FORM: Record<string, string> = { balanced: "balanced", size: "minimize_size", speed: "minimize_latency", accuracy: "maximize_accuracy" };

function read(): Payload | string {
  const text = document.getElementById("edgeopt-results")?.textContent ?? "";
  if (text.trim() === "@@EDGEOPT_RESULTS@@") return "This is the report template, without results: make a report with `edgeopt report RESULTS_DIR`.";
  try {
    const p = JSON.parse(text) as Payload;
    if (!p?.results || typeof p.results !== "object" || !p.results.baseline) return "The embedded results have no baseline: is this a results.json from `edgeopt optimize`?";
    return p;
  } catch (e) {
    return `The embedded results are not valid JSON (${String(e)}).`;
  }
}

function Report({ p }: { p: Payload }) {
  const raw = p.results;
  const devices = useMemo(() => estimatedDevices(raw).map((id) => ({ id, name: p.devices?.find((d) => d.id === id)?.name ?? id })), [raw, p.devices]);
  // Without --device the run ranked on each variant's first estimate: the first device listed.
  const device = p.device || estimatedDevices(raw)[0] || "";
  const results = useMemo(() => resultsFromRaw(raw, "report", device), [raw, device]);
  const rec = (raw.recommendation ?? {}) as { goal?: string; technique?: string; error?: string };
  const dataset = (raw.dataset ?? {}) as { name?: string; test_samples?: number };
  return (
    <div className="min-h-screen">
      <header className="border-b border-slate-200 dark:border-slate-800">
        <div className="mx-auto max-w-7xl px-4 py-3">
          <p className="text-lg font-bold tracking-tight">EdgeOpt report</p>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-7xl space-y-5 px-4 py-6">
        <div>
          <h1 className="text-2xl font-semibold" data-testid="report-title">
            {String(raw.model ?? "model").split("/").pop()} on {dataset.name ?? "its dataset"}
          </h1>
          <p className="muted">
            {String(raw.format ?? "")} · {dataset.test_samples ?? "?"} test images · {p.results_dir ? `from ${p.results_dir}/results.json` : "from results.json"}
            {p.generated_at && ` · report made ${dateTime(p.generated_at)}`}
            {p.device ? ` · target ${devices.find((d) => d.id === device)?.name ?? device}` : ""}
          </p>
          <p className="muted">A snapshot made by `edgeopt report`: "what if" ranks the measured variants again in this page, with no server.</p>
        </div>
        {rec.error && <p role="alert">The run could not recommend a variant: {rec.error}</p>}
        <ResultsView
          source={{
            id: "report",
            results,
            config: { optimization_goal: GOAL_FORM[rec.goal ?? "balanced"] ?? "balanced", target_device: device },
            devices,
            recommend: async (body) => localRecommendations(raw, body, device),
            answerLabel: "the full ranking",
          }}
        />
      </main>
    </div>
  );
}

const p = read();
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false } } })}>
      {typeof p === "string" ? (
        <main className="mx-auto max-w-3xl p-6">
          <h1 className="text-xl font-semibold">EdgeOpt report</h1>
          <p role="alert" className="mt-2">
            {p}
          </p>
        </main>
      ) : (
        <Report p={p} />
      )}
    </QueryClientProvider>
  </StrictMode>,
);
