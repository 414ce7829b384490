import { useState } from "react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, type Experiment } from "../api/client";
import { Bar, Empty, ErrorBox, Loading, SelectField, StatusBadge } from "../components/ui";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { Link } from "../lib/router";
import { dateTime, goalName, techniqueName } from "../lib/format";
import { ACTIVE, GOALS, PRESET_DATASETS, STATUSES, useDevices } from "../lib/queries";

export function ExperimentsPage() {
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const [device, setDevice] = useState("");
  const [goal, setGoal] = useState("");
  const [dataset, setDataset] = useState("");
  const [offset, setOffset] = useState(0);
  const [toDelete, setToDelete] = useState<Experiment | null>(null);
  const limit = 25;
  const devices = useDevices();
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: ["experiments", { q, status, device, goal, dataset, offset }],
    queryFn: () => api.experiments({ q, status, device, goal, dataset, limit, offset }),
    placeholderData: keepPreviousData,
    // Running experiments' progress moves: poll while any is active.
    refetchInterval: (query) => (query.state.data?.items.some((e) => ACTIVE.has(e.status)) ? 1500 : false),
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.remove(id),
    onSuccess: () => {
      setToDelete(null);
      qc.invalidateQueries({ queryKey: ["experiments"] });
    },
  });
  const filtered = q || status || device || goal || dataset;
  const deviceName = (id?: string | null) => devices.data?.find((d) => d.id === id)?.name ?? id ?? "—";

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h1 className="text-2xl font-semibold">Experiments</h1>
        <Link to="/new" className="btn-primary">
          New experiment
        </Link>
      </div>
      <form role="search" className="grid gap-2 sm:grid-cols-2 lg:grid-cols-5" onSubmit={(e) => e.preventDefault()}>
        <div>
          <label htmlFor="f-q" className="label">
            Search
          </label>
          <input id="f-q" className="input" type="search" placeholder="name…" value={q} onChange={(e) => (setQ(e.target.value), setOffset(0))} />
        </div>
        <SelectField any="Any" id="f-status" label="Status" value={status} onChange={(v) => (setStatus(v), setOffset(0))} options={STATUSES.map((s) => [s, s])} />
        <SelectField
          any="Any"
          id="f-device"
          label="Device"
          value={device}
          onChange={(v) => (setDevice(v), setOffset(0))}
          options={(devices.data ?? []).map((d) => [d.id, d.name])}
        />
        <SelectField any="Any" id="f-goal" label="Goal" value={goal} onChange={(v) => (setGoal(v), setOffset(0))} options={GOALS.map((g) => [g, goalName(g)])} />
        <SelectField any="Any" id="f-dataset" label="Dataset" value={dataset} onChange={(v) => (setDataset(v), setOffset(0))} options={PRESET_DATASETS.map((d) => [d.id, d.name])} />
      </form>

      {list.isPending && <Loading what="experiments" />}
      {list.isError && <ErrorBox error={list.error} title="Cannot list the experiments" />}
      {list.data && list.data.items.length === 0 && !filtered && (
        <Empty>
          <h2 className="text-lg font-semibold">No experiments yet</h2>
          <p className="muted mx-auto mt-2 max-w-prose">
            Upload a trained model (ONNX, Keras or TorchScript), pick a dataset and a device, and EdgeOpt measures seven ways to make it smaller and
            faster, then recommends one.
          </p>
          <Link to="/new" className="btn-primary mt-4">
            Start your first experiment
          </Link>
        </Empty>
      )}
      {list.data && list.data.items.length === 0 && filtered && (
        <Empty>
          <p>No experiment matches these filters.</p>
        </Empty>
      )}
      {list.data && list.data.items.length > 0 && (
        <>
          <ul className="grid gap-3 md:grid-cols-2 xl:grid-cols-3" aria-label="Experiments">
            {list.data.items.map((e) => (
              <li key={e.id} className="card flex flex-col gap-2" data-testid="experiment-card">
                <div className="flex items-start justify-between gap-2">
                  <Link to={`/experiments/${e.id}`} className="font-semibold text-sky-800 underline-offset-2 hover:underline dark:text-sky-300">
                    {e.name}
                  </Link>
                  <StatusBadge status={e.status} />
                </div>
                <dl className="grid grid-cols-2 gap-x-2 text-xs text-slate-600 dark:text-slate-400">
                  <dt>Device</dt>
                  <dd>{deviceName(e.target_device)}</dd>
                  <dt>Dataset</dt>
                  <dd>{e.dataset_name || "—"}</dd>
                  <dt>Goal</dt>
                  <dd>{goalName(e.optimization_goal)}</dd>
                  <dt>Created</dt>
                  <dd>{dateTime(e.created_at)}</dd>
                  {e.recommended_technique && (
                    <>
                      <dt>Recommended</dt>
                      <dd className="font-semibold text-slate-900 dark:text-slate-100">{techniqueName(e.recommended_technique)}</dd>
                    </>
                  )}
                </dl>
                {ACTIVE.has(e.status) && (
                  <div>
                    <Bar value={e.progress} label={`${e.name} progress`} />
                    <p className="mt-1 text-xs">{Math.round(e.progress * 100)} % done</p>
                  </div>
                )}
                {e.error && <p className="text-xs text-red-800 dark:text-red-300">{e.error}</p>}
                <div className="mt-auto flex gap-2 pt-1">
                  <Link to={`/experiments/${e.id}`} className="btn-secondary">
                    Open
                  </Link>
                  <button type="button" className="btn-secondary" onClick={() => setToDelete(e)} aria-label={`Delete ${e.name}`}>
                    Delete
                  </button>
                </div>
              </li>
            ))}
          </ul>
          <div className="flex items-center gap-2 text-sm">
            <span>
              {offset + 1}–{offset + list.data.items.length} of {list.data.total}
            </span>
            <button type="button" className="btn-secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - limit))}>
              Previous
            </button>
            <button type="button" className="btn-secondary" disabled={offset + limit >= list.data.total} onClick={() => setOffset(offset + limit)}>
              Next
            </button>
          </div>
        </>
      )}
      {remove.isError && <ErrorBox error={remove.error} title="Cannot delete" />}
      <ConfirmDialog
        open={toDelete !== null}
        title={`Delete “${toDelete?.name ?? ""}”?`}
        body={
          toDelete && ACTIVE.has(toDelete.status)
            ? "It is running: the run stops, and the experiment and all its files are removed. This cannot be undone."
            : "The experiment, its model, results and downloads are removed. This cannot be undone."
        }
        confirm="Delete"
        busy={remove.isPending}
        onConfirm={() => toDelete && remove.mutate(toDelete.id)}
        onClose={() => setToDelete(null)}
      />
    </div>
  );
}
