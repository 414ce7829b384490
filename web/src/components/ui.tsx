// Shared pieces: error, loading and empty states, status badges, the "estimate" mark.
import type { ReactNode } from "react";
import { ApiError } from "../api/client";

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  const e = error instanceof ApiError ? error : null;
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100">
      <p className="font-semibold">{title ?? "The server refused this"}</p>
      <p className="mt-1 whitespace-pre-wrap" data-testid="error-message">
        {e ? e.message : String((error as Error)?.message ?? error)}
      </p>
      {e?.hint && <p className="mt-1">What to do: {e.hint}</p>}
      {e && e.status > 0 && (
        <p className="mt-1 text-xs opacity-75">
          HTTP {e.status} · {e.code}
        </p>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" className="muted animate-pulse py-6">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="rounded-lg border border-dashed border-slate-300 p-8 text-center dark:border-slate-700">{children}</div>;
}

const STATUS_STYLE: Record<string, string> = {
  created: "bg-slate-100 text-slate-800 dark:bg-slate-800 dark:text-slate-100",
  queued: "bg-indigo-100 text-indigo-900 dark:bg-indigo-900 dark:text-indigo-100",
  running: "bg-sky-100 text-sky-900 dark:bg-sky-900 dark:text-sky-100",
  completed: "bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100",
  failed: "bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100",
  cancelled: "bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100",
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <span data-testid="status" className={`inline-block rounded-full px-2 py-0.5 text-xs font-semibold ${STATUS_STYLE[status] ?? STATUS_STYLE.created}`}>
      {status}
    </span>
  );
}

/** Marks a figure the estimator made (not measured). */
export function Est({ title }: { title?: string }) {
  return (
    <abbr className="est no-underline" title={title ?? "an estimate from EdgeOpt's calibrated estimator, not a measurement"}>
      est.
    </abbr>
  );
}

export function Bar({ value, label }: { value: number; label: string }) {
  const v = Math.max(0, Math.min(1, value));
  return (
    <div role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(v * 100)} className="h-2 w-full overflow-hidden rounded bg-slate-200 dark:bg-slate-800">
      <div className="h-full bg-sky-600 transition-[width] duration-300 dark:bg-sky-400" style={{ width: `${v * 100}%` }} />
    </div>
  );
}

/** A labelled text input (numbers are typed as text so a half-typed "0." survives). */
export function TextField(props: { id: string; label: string; value: string; onChange: (v: string) => void; inputMode?: "decimal" | "numeric" | "text"; placeholder?: string }) {
  return (
    <div>
      <label htmlFor={props.id} className="label">
        {props.label}
      </label>
      <input id={props.id} className="input" inputMode={props.inputMode} placeholder={props.placeholder} value={props.value} onChange={(e) => props.onChange(e.target.value)} />
    </div>
  );
}

/** A labelled select; `any` adds an empty first choice (filters). */
export function SelectField(props: { id: string; label: string; value: string; onChange: (v: string) => void; options: [string, string][]; any?: string }) {
  return (
    <div>
      <label htmlFor={props.id} className="label">
        {props.label}
      </label>
      <select id={props.id} className="input" value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.any !== undefined && <option value="">{props.any}</option>}
        {props.options.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
}
