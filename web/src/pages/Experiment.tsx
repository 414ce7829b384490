// One experiment: live progress while it runs (SSE, resumable), then its results
// (components/ResultsView.tsx, fed from the server).
import { useEffect, useMemo, useRef, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Event, type Experiment } from "../api/client";
import { Bar, ErrorBox, Est, Loading, StatusBadge } from "../components/ui";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ResultsView } from "../components/ResultsView";
import { bytes, dateTime, duration, goalName, pct, points, techniqueName } from "../lib/format";
import { applyEvent, initialProgress, stage, TERMINAL, type ProgressState } from "../lib/progress";
import { ACTIVE, useDevices } from "../lib/queries";
import { Link, navigate } from "../lib/router";

const EVENT_TYPES = ["status", "created", "baseline_completed", "technique_started", "technique_progress", "technique_completed", "progress", "log"];

/** The stream's state, kept in sessionStorage so a reload resumes after the last event seen. */
function useProgressStream(id: string, active: boolean, onEnd: () => void) {
  const key = `edgeopt-progress-${id}`;
  const ref = useRef<ProgressState>(null as unknown as ProgressState);
  if (ref.current === null) {
    try {
      ref.current = JSON.parse(sessionStorage.getItem(key) ?? "null") ?? initialProgress();
    } catch {
      ref.current = initialProgress();
    }
  }
  const [state, setState] = useState(ref.current);
  const [connection, setConnection] = useState<"idle" | "open" | "reconnecting">("idle");
  const endRef = useRef(onEnd);
  endRef.current = onEnd;
  useEffect(() => {
    if (!active || ref.current.ended) return;
    // Resume after the last event this tab saw; EventSource itself resends Last-Event-ID when a
    // dropped connection comes back.
    const from = ref.current.lastId;
    const es = new EventSource(api.streamUrl(id) + (from > 0 ? `?last_event_id=${from}` : ""));
    let pending = 0;
    const on = (m: MessageEvent) => {
      let data: unknown = {};
      try {
        data = JSON.parse(m.data);
      } catch {
        data = { message: m.data };
      }
      const e: Event = { id: Number(m.lastEventId) || ref.current.lastId + 1, event: m.type, data: data as Event["data"], time: new Date().toISOString() };
      ref.current = applyEvent(ref.current, e);
      // Many events arrive at once on a resume: render once per frame.
      if (!pending)
        pending = requestAnimationFrame(() => {
          pending = 0;
          setState(ref.current);
          try {
            sessionStorage.setItem(key, JSON.stringify(ref.current));
          } catch {
            /* storage full: the stream still works, a reload replays from the start */
          }
        });
      if (ref.current.ended) {
        es.close();
        setConnection("idle");
        setState(ref.current);
        endRef.current();
      }
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, on as EventListener);
    es.onopen = () => setConnection("open");
    es.onerror = () => setConnection(es.readyState === EventSource.CLOSED ? "idle" : "reconnecting");
    return () => {
      es.close();
      if (pending) cancelAnimationFrame(pending);
    };
  }, [id, active, key]);
  return { state, connection };
}

export default function ExperimentPage({ id }: { id: string }) {
  const qc = useQueryClient();
  const exp = useQuery({
    queryKey: ["experiment", id],
    queryFn: () => api.experiment(id),
    refetchInterval: (q) => (q.state.data && ACTIVE.has(q.state.data.status) ? 3000 : false),
  });
  const active = !!exp.data && (ACTIVE.has(exp.data.status) || exp.data.status === "created");
  const { state, connection } = useProgressStream(id, !!exp.data && ACTIVE.has(exp.data.status), () => {
    qc.invalidateQueries({ queryKey: ["experiment", id] });
    qc.invalidateQueries({ queryKey: ["results", id] });
  });
  const [confirmDelete, setConfirmDelete] = useState(false);
  const stop = useMutation({ mutationFn: () => api.stop(id), onSuccess: () => qc.invalidateQueries({ queryKey: ["experiment", id] }) });
  const start = useMutation({ mutationFn: () => api.start(id), onSuccess: () => qc.invalidateQueries({ queryKey: ["experiment", id] }) });
  const remove = useMutation({ mutationFn: () => api.remove(id), onSuccess: () => navigate("/") });

  if (exp.isPending) return <Loading what="the experiment" />;
  if (exp.isError)
    return (
      <div className="space-y-3">
        <ErrorBox error={exp.error} title="Cannot open this experiment" />
        <Link to="/" className="btn-secondary">
          Back to the experiments
        </Link>
      </div>
    );
  const e = exp.data;
  const showProgress = ACTIVE.has(e.status) || state.order.length > 0;
  return (
    <div className="space-y-5">
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div>
          <h1 className="text-2xl font-semibold">{e.name}</h1>
          <p className="muted">
            <StatusBadge status={e.status} /> · {e.dataset_name} · {e.target_device} · {goalName(e.optimization_goal)} · created {dateTime(e.created_at)}
          </p>
        </div>
        <div className="flex flex-wrap gap-2">
          {ACTIVE.has(e.status) && (
            <button type="button" className="btn-secondary" disabled={stop.isPending} onClick={() => stop.mutate()}>
              {stop.isPending ? "Cancelling…" : "Cancel run"}
            </button>
          )}
          {e.status === "created" && (
            <button type="button" className="btn-primary" disabled={start.isPending || !e.model} onClick={() => start.mutate()}>
              Start
            </button>
          )}
          <Link to={`/compare?ids=${id}`} className="btn-secondary">
            Compare…
          </Link>
          <button type="button" className="btn-secondary" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        </div>
      </div>
      {stop.isError && <ErrorBox error={stop.error} title="Cannot cancel" />}
      {start.isError && <ErrorBox error={start.error} title="Cannot start" />}
      {remove.isError && <ErrorBox error={remove.error} title="Cannot delete" />}
      {e.error && <ErrorBox error={new Error(e.error)} title={`The run ${e.status}`} />}
      {e.status === "created" && !e.model && <p className="muted">This experiment has no model yet. Upload one with the wizard, or delete it.</p>}
      {/* While it runs, progress leads; once there are results, the recommendation does. */}
      {showProgress && !e.has_results && <ProgressView state={state} exp={e} connection={connection} />}
      {e.has_results && <ServerResults exp={e} />}
      {showProgress && e.has_results && <ProgressView state={state} exp={e} connection={connection} />}
      {!e.has_results && !active && TERMINAL.has(e.status) && <p className="muted">This run ended without results.</p>}
      <ConfirmDialog
        open={confirmDelete}
        title={`Delete “${e.name}”?`}
        body={ACTIVE.has(e.status) ? "It is running: the run stops and everything is removed. This cannot be undone." : "The experiment and all its files are removed. This cannot be undone."}
        confirm="Delete"
        busy={remove.isPending}
        onConfirm={() => remove.mutate()}
        onClose={() => setConfirmDelete(false)}
      />
    </div>
  );
}

function ProgressView({ state, exp, connection }: { state: ProgressState; exp: Experiment; connection: string }) {
  const overall = TERMINAL.has(exp.status) ? (exp.status === "completed" ? 1 : state.progress) : Math.max(state.progress, exp.progress);
  const running = state.order.map((k) => state.techniques[k]).filter((r) => r.status === "running");
  const eta = running.find((r) => r.etaSeconds !== undefined)?.etaSeconds;
  return (
    <section className="card space-y-3" aria-labelledby="progress-title">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="progress-title" className="text-lg font-semibold">
          Progress
        </h2>
        <span className="text-xs" role="status" data-testid="connection">
          {connection === "reconnecting" ? "connection lost, reconnecting (resumes where it stopped)…" : connection === "open" ? "live" : ""}
        </span>
      </div>
      <div>
        <Bar value={overall} label="Overall progress" />
        <p className="mt-1 text-sm" data-testid="overall">
          {Math.round(overall * 100)} % · {state.jobsTotal ? `${state.jobsDone} of ${state.jobsTotal} jobs` : exp.status}
          {eta !== undefined && !TERMINAL.has(exp.status) && (
            <>
              {" "}
              · current technique about {duration(eta)} left <Est title="the server's estimate from the technique's progress so far" />
            </>
          )}
        </p>
        <p className="muted" data-testid="stage">
          Stage: {stage(state) || "waiting for the first event"}
        </p>
      </div>
      <div className="relative overflow-x-auto">
        <table className="w-full min-w-[36rem]">
          <caption className="sr-only">Each technique's progress and, when finished, its measured metrics</caption>
          <thead>
            <tr>
              <th className="th">Technique</th>
              <th className="th w-1/4">Progress</th>
              <th className="th">Accuracy</th>
              <th className="th">Drop</th>
              <th className="th">Size</th>
            </tr>
          </thead>
          <tbody>
            {state.order.map((k) => {
              const r = state.techniques[k];
              const m = (r.metrics ?? {}) as { accuracy?: number; accuracy_drop_pp?: number; size_bytes?: number };
              return (
                <tr key={k} className="border-t border-slate-200 dark:border-slate-800" data-testid={`progress-${k}`}>
                  <td className="td">
                    <span className="font-medium">{techniqueName(k)}</span>
                    <span className="block text-xs text-slate-600 dark:text-slate-400">
                      {r.status}
                      {r.status === "running" && r.message && ` — ${r.message}`}
                      {r.error && ` — ${r.error}`}
                    </span>
                  </td>
                  <td className="td">
                    <Bar value={r.status === "completed" ? 1 : r.fraction} label={`${k} progress`} />
                  </td>
                  <td className="td">{m.accuracy !== undefined ? pct(m.accuracy * 100) : "—"}</td>
                  <td className="td">{m.accuracy_drop_pp !== undefined ? points(m.accuracy_drop_pp) : "—"}</td>
                  <td className="td">{bytes(m.size_bytes)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <details>
        <summary className="cursor-pointer text-sm font-medium">Log ({state.log.length} lines)</summary>
        <ol className="mt-2 max-h-64 overflow-y-auto rounded bg-slate-100 p-2 font-mono text-xs dark:bg-slate-950" aria-label="Run log" tabIndex={0}>
          {state.log.map((l) => (
            <li key={l.id}>
              <span className="text-slate-500">#{l.id}</span> {l.text}
            </li>
          ))}
        </ol>
      </details>
    </section>
  );
}

function ServerResults({ exp }: { exp: Experiment }) {
  const results = useQuery({ queryKey: ["results", exp.id], queryFn: () => api.results(exp.id) });
  const devices = useDevices();
  const list = useMemo(() => (devices.data ?? []).map((d) => ({ id: d.id, name: d.name })), [devices.data]);
  if (results.isPending) return <Loading what="the results" />;
  if (results.isError) return <ErrorBox error={results.error} title="Cannot read the results" />;
  return (
    <ResultsView
      source={{
        id: exp.id,
        results: results.data,
        config: (exp.config ?? {}) as Record<string, unknown>,
        devices: list,
        recommend: (body) => (body ? api.whatIf(exp.id, body) : api.recommendations(exp.id)),
        answerLabel: "the server's answer",
        downloadUrl: (t) => api.downloadUrl(exp.id, t),
      }}
    />
  );
}
