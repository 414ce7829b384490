// Folds the progress stream's events (GET /api/optimize/{id}/progress-stream, or /events) into
// what the live view shows. Pure, so a reload can rebuild the same state from saved events.
import type { Event } from "../api/client";

export type TechniqueProgress = {
  technique: string;
  status: "queued" | "running" | "completed" | "failed" | "cancelled";
  fraction: number;
  message: string;
  etaSeconds?: number; // the server's estimate
  worker?: string;
  metrics?: Record<string, unknown>; // accuracy (0..1), accuracy_ci95, accuracy_drop_pp, size_bytes, ...
  error?: string;
};

export type ProgressState = {
  lastId: number;
  status: string;
  message: string;
  progress: number;
  jobsDone: number;
  jobsTotal: number;
  order: string[];
  techniques: Record<string, TechniqueProgress>;
  log: { id: number; time: string; text: string }[];
  ended: boolean;
};

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function initialProgress(): ProgressState {
  return { lastId: 0, status: "", message: "", progress: 0, jobsDone: 0, jobsTotal: 0, order: [], techniques: {}, log: [], ended: false };
}

function row(s: ProgressState, t: string): TechniqueProgress {
  if (!s.techniques[t]) {
    s.techniques[t] = { technique: t, status: "queued", fraction: 0, message: "" };
    if (!s.order.includes(t)) s.order.push(t);
  }
  return s.techniques[t];
}

const str = (x: unknown) => (typeof x === "string" ? x : "");
const numOr = (x: unknown, d: number) => (typeof x === "number" && Number.isFinite(x) ? x : d);

/** The state after one event; events at or before lastId are ignored (a resumed stream). */
export function applyEvent(prev: ProgressState, e: Event): ProgressState {
  if (e.id <= prev.lastId) return prev;
  const s: ProgressState = { ...prev, techniques: { ...prev.techniques }, order: [...prev.order], log: prev.log, lastId: e.id };
  const d = (e.data ?? {}) as Record<string, unknown>;
  const t = str(d.technique);
  if (t) s.techniques[t] = { ...row(s, t) };
  let text = "";
  switch (e.event) {
    case "created":
    case "status": {
      s.status = str(d.status) || (e.event === "created" ? "created" : s.status);
      s.message = str(d.message);
      if (Array.isArray(d.techniques)) {
        row(s, "fp32");
        for (const x of d.techniques) row(s, String(x));
      }
      if (TERMINAL.has(s.status) || e.event === "created") s.ended = true;
      if (s.status === "completed") s.progress = 1;
      if (s.status === "cancelled" || s.status === "failed") {
        for (const k of s.order) {
          const r = s.techniques[k];
          if (r.status === "queued" || r.status === "running") s.techniques[k] = { ...r, status: "cancelled", etaSeconds: undefined };
        }
      }
      text = `${s.status}: ${s.message}`;
      break;
    }
    case "baseline_completed": {
      s.techniques.fp32 = { ...row(s, "fp32"), status: "completed", fraction: 1, metrics: d, etaSeconds: undefined };
      text = `baseline measured: ${(numOr(d.accuracy, 0) * 100).toFixed(2)} % accuracy`;
      break;
    }
    case "technique_started": {
      s.techniques[t] = { ...s.techniques[t], status: "running", worker: str(d.worker) };
      text = `${t} started on ${str(d.worker)}`;
      break;
    }
    case "technique_progress": {
      const r = s.techniques[t];
      const fraction = numOr(d.fraction, r.fraction);
      // The baseline's progress comes before any "started" event.
      const status = r.status === "queued" && (fraction > 0 || t === "fp32") && !str(d.message).startsWith("queued") ? "running" : r.status;
      s.techniques[t] = { ...r, status, fraction, message: str(d.message), etaSeconds: typeof d.eta_seconds_estimate === "number" ? d.eta_seconds_estimate : undefined };
      text = `${t}: ${str(d.message)}`;
      break;
    }
    case "technique_completed": {
      const ok = str(d.status) === "completed";
      s.techniques[t] = { ...s.techniques[t], status: ok ? "completed" : "failed", fraction: 1, metrics: ok ? d : undefined, error: ok ? undefined : str(d.error), etaSeconds: undefined };
      text = ok ? `${t} done: ${(numOr(d.accuracy, 0) * 100).toFixed(2)} % accuracy` : `${t} failed: ${str(d.error)}`;
      break;
    }
    case "progress": {
      s.progress = numOr(d.progress, s.progress);
      s.jobsDone = numOr(d.jobs_done, s.jobsDone);
      s.jobsTotal = numOr(d.jobs_total, s.jobsTotal);
      text = `${s.jobsDone} of ${s.jobsTotal} jobs done`;
      break;
    }
    case "log":
      text = str(d.message);
      break;
    default:
      text = `${e.event}: ${JSON.stringify(d)}`;
  }
  // technique_progress is frequent: the log keeps the latest 300 lines.
  s.log = [...prev.log, { id: e.id, time: e.time, text }].slice(-300);
  return s;
}

export function reduceEvents(events: Event[], from = initialProgress()): ProgressState {
  return events.reduce(applyEvent, from);
}

/** The current stage in words: the running technique's message, else the status. */
export function stage(s: ProgressState): string {
  const running = s.order.map((k) => s.techniques[k]).filter((r) => r.status === "running");
  if (running.length) return running.map((r) => `${r.technique}: ${r.message}`).join(" · ");
  return s.message || s.status;
}
