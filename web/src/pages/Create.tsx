// The create wizard: name → model → dataset → device → goal and limits → techniques → review.
// The experiment is created on the server when the name is given (uploads need its id); later
// steps PATCH its settings, and "Create and start" starts it.
import { useMemo, useRef, useState, type DragEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, ApiError, type DatasetUpload, type ExperimentCreate, type ModelUpload } from "../api/client";
import { ErrorBox, Est, Loading, SelectField, TextField } from "../components/ui";
import { bytes, count, goalName, ms, techniqueName } from "../lib/format";
import { GOALS, PRESET_DATASETS, useDevices, useTechniques } from "../lib/queries";
import { keySpecs } from "../lib/device";
import { navigate } from "../lib/router";

const STEPS = ["Name", "Model", "Dataset", "Device", "Goal and limits", "Techniques", "Review"];
type Summary = ModelUpload["model"] & { card?: unknown; pretrained_model_name?: string };

/** A zoo card names its dataset as a string or as {name, ...}. */
function datasetOf(d: unknown): string | undefined {
  return typeof d === "string" ? d : d && typeof d === "object" ? (d as { name?: string }).name : undefined;
}

function num(s: string): number | undefined {
  if (s.trim() === "") return undefined;
  const v = Number(s);
  return Number.isFinite(v) ? v : undefined;
}

export default function CreatePage() {
  const [step, setStep] = useState(0);
  const [name, setName] = useState("");
  const [id, setId] = useState<string | null>(null);
  const [model, setModel] = useState<Summary | null>(null);
  const [datasetType, setDatasetType] = useState<"preset" | "custom">("preset");
  const [datasetName, setDatasetName] = useState("fashion-mnist");
  const [dataset, setDataset] = useState<DatasetUpload["dataset"] | null>(null);
  const [device, setDevice] = useState("raspberry_pi_4");
  const [goal, setGoal] = useState("balanced");
  const [dropKind, setDropKind] = useState<"points" | "relative">("points");
  const [drop, setDrop] = useState("1");
  const [maxSize, setMaxSize] = useState("");
  const [maxLatency, setMaxLatency] = useState("");
  const [chosen, setChosen] = useState<string[] | null>(null);
  const [params, setParams] = useState<Record<string, Record<string, string>>>({});
  const [evalLimit, setEvalLimit] = useState("");
  const [maxTrain, setMaxTrain] = useState("");
  const [error, setError] = useState<unknown>(null);
  const techniques = useTechniques();
  const allTechniques = techniques.data?.map((t) => t.id) ?? [];
  const selected = chosen ?? allTechniques;

  const settings = (): ExperimentCreate => {
    const body: ExperimentCreate = {
      name: name.trim(),
      dataset_type: datasetType,
      target_device: device,
      optimization_goal: goal as ExperimentCreate["optimization_goal"],
      max_accuracy_drop_points: dropKind === "points" ? (num(drop) ?? null) : null,
      max_accuracy_drop_relative_pct: dropKind === "relative" ? (num(drop) ?? null) : null,
      max_size_mb: num(maxSize) ?? null,
      max_latency_ms: num(maxLatency) ?? null,
      eval_limit: num(evalLimit) ?? null,
      max_train_images: num(maxTrain) ?? null,
    };
    if (datasetType === "preset") body.dataset_name = datasetName;
    if (chosen) body.techniques = chosen as ExperimentCreate["techniques"];
    const p: NonNullable<ExperimentCreate["parameters"]> = {};
    for (const [t, kv] of Object.entries(params)) {
      if (!selected.includes(t)) continue;
      for (const [k, v] of Object.entries(kv)) {
        if (v.trim() === "") continue;
        (p[t] ??= {})[k] = num(v) ?? (v === "true" ? true : v === "false" ? false : v);
      }
    }
    if (Object.keys(p).length) body.parameters = p;
    return body;
  };

  const next = useMutation({
    mutationFn: async () => {
      if (step === 0) {
        if (!name.trim()) throw new ApiError(0, "invalid", "Give the experiment a name.");
        if (!id) {
          const e = await api.create({ name: name.trim(), dataset_type: "preset", dataset_name: datasetName, target_device: device });
          setId(e.id);
        } else await api.patch(id, { name: name.trim() });
      }
      if (step === 1 && !model) throw new ApiError(0, "invalid", "Upload a model or pick one from the zoo first.");
      if (step === 2 && datasetType === "custom" && !dataset) throw new ApiError(0, "invalid", "Upload a ZIP of the dataset, or pick a preset.");
      if (step >= 2 && id) await api.patch(id, settings());
    },
    onSuccess: () => {
      setError(null);
      setStep((s) => s + 1);
    },
    onError: setError,
  });

  const start = useMutation({
    mutationFn: async () => {
      await api.patch(id!, settings());
      await api.start(id!);
      return id!;
    },
    onSuccess: (x) => navigate(`/experiments/${x}`),
    onError: setError,
  });

  return (
    <div className="mx-auto max-w-3xl space-y-4">
      <h1 className="text-2xl font-semibold">New experiment</h1>
      <ol className="flex flex-wrap gap-1 text-xs" aria-label="Steps">
        {STEPS.map((s, i) => (
          <li key={s} aria-current={i === step ? "step" : undefined} className={`rounded-full px-2 py-1 ${i === step ? "bg-sky-700 text-white" : i < step ? "bg-sky-100 text-sky-900 dark:bg-sky-900 dark:text-sky-100" : "bg-slate-100 text-slate-700 dark:bg-slate-800 dark:text-slate-300"}`}>
            {i + 1}. {s}
          </li>
        ))}
      </ol>
      <section className="card space-y-4" aria-labelledby="step-title">
        <h2 id="step-title" className="text-lg font-semibold">
          {STEPS[step]}
        </h2>
        {step === 0 && (
          <div>
            <label htmlFor="name" className="label">
              Name
            </label>
            <input id="name" className="input" value={name} maxLength={256} onChange={(e) => setName(e.target.value)} placeholder="e.g. fashion CNN on a Pi 4" autoFocus />
          </div>
        )}
        {step === 1 && id && <ModelStep id={id} model={model} onModel={setModel} />}
        {step === 2 && id && (
          <DatasetStep
            id={id}
            type={datasetType}
            setType={setDatasetType}
            name={datasetName}
            setName={setDatasetName}
            dataset={dataset}
            onDataset={setDataset}
            modelDataset={datasetOf((model?.card as { dataset?: unknown } | undefined)?.dataset)}
          />
        )}
        {step === 3 && <DeviceStep id={id!} device={device} setDevice={setDevice} model={model} />}
        {step === 4 && (
          <div className="space-y-3">
            <SelectField id="goal" label="Goal" value={goal} onChange={setGoal} options={GOALS.map((g) => [g, goalName(g)])} />
            <fieldset className="grid gap-2 sm:grid-cols-[1fr_auto]">
              <legend className="label">Largest accuracy drop</legend>
              <input id="drop" aria-label="Largest accuracy drop" className="input" inputMode="decimal" value={drop} onChange={(e) => setDrop(e.target.value)} />
              <select aria-label="Drop unit" className="input" value={dropKind} onChange={(e) => setDropKind(e.target.value as "points" | "relative")}>
                <option value="points">accuracy points (pt)</option>
                <option value="relative">% of the baseline accuracy</option>
              </select>
            </fieldset>
            <div className="grid gap-2 sm:grid-cols-2">
              <TextField id="max-size" label="Largest size (MB, optional)" inputMode="decimal" value={maxSize} onChange={setMaxSize} />
              <TextField id="max-latency" label="Largest latency on the device (ms, optional)" inputMode="decimal" value={maxLatency} onChange={setMaxLatency} />
            </div>
            <Feasibility id={id!} device={device} model={model} />
          </div>
        )}
        {step === 5 && (
          <div className="space-y-3">
            {techniques.isPending && <Loading what="techniques" />}
            {techniques.isError && <ErrorBox error={techniques.error} />}
            <p className="muted">Every technique runs unless you untick it. Parameters show their defaults; leave a field empty to keep it.</p>
            <ul className="space-y-2">
              {techniques.data?.map((t) => (
                <li key={t.id} className="rounded-md border border-slate-200 p-3 dark:border-slate-800">
                  <label className="flex items-start gap-2">
                    <input
                      type="checkbox"
                      className="mt-1"
                      checked={selected.includes(t.id)}
                      onChange={(e) => setChosen(e.target.checked ? [...selected, t.id] : selected.filter((x) => x !== t.id))}
                    />
                    <span>
                      <span className="font-medium">{techniqueName(t.id)}</span> <code className="text-xs">{t.id}</code>
                      <span className="block text-xs text-slate-600 dark:text-slate-400">{t.description}</span>
                    </span>
                  </label>
                  {selected.includes(t.id) && (t.parameters?.length ?? 0) > 0 && (
                    <details className="mt-2 pl-6">
                      <summary className="cursor-pointer text-sm">Advanced: parameters</summary>
                      <div className="mt-2 grid gap-2 sm:grid-cols-2">
                        {t.parameters!.map((p) => (
                          <div key={p.name}>
                            <label htmlFor={`p-${t.id}-${p.name}`} className="label">
                              {p.name}
                            </label>
                            <input
                              id={`p-${t.id}-${p.name}`}
                              className="input"
                              placeholder={`default ${String(p.default)}`}
                              value={params[t.id]?.[p.name] ?? ""}
                              onChange={(e) => setParams({ ...params, [t.id]: { ...params[t.id], [p.name]: e.target.value } })}
                            />
                            {typeof p.help === "string" && <p className="mt-1 text-xs text-slate-600 dark:text-slate-400">{p.help}</p>}
                          </div>
                        ))}
                      </div>
                    </details>
                  )}
                </li>
              ))}
            </ul>
            <details>
              <summary className="cursor-pointer text-sm font-medium">Advanced: run size</summary>
              <div className="mt-2 grid gap-2 sm:grid-cols-2">
                <TextField id="eval-limit" label="Test images to score (empty: all)" inputMode="numeric" value={evalLimit} onChange={setEvalLimit} />
                <TextField id="max-train" label="Training images for QAT/distillation/calibration (empty: all)" inputMode="numeric" value={maxTrain} onChange={setMaxTrain} />
              </div>
            </details>
          </div>
        )}
        {step === 6 && (
          <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm" data-testid="review">
            <dt className="font-medium">Name</dt>
            <dd>{name}</dd>
            <dt className="font-medium">Model</dt>
            <dd>
              {model?.name || model?.file} ({model?.format}, {count(model?.params)} params, {count(model?.macs)} MACs)
            </dd>
            <dt className="font-medium">Dataset</dt>
            <dd>{datasetType === "preset" ? PRESET_DATASETS.find((d) => d.id === datasetName)?.name : `uploaded ZIP (${dataset?.classes.length} classes)`}</dd>
            <dt className="font-medium">Device</dt>
            <dd>{device}</dd>
            <dt className="font-medium">Goal</dt>
            <dd>{goalName(goal)}</dd>
            <dt className="font-medium">Limits</dt>
            <dd>
              {[
                drop && `drop ≤ ${drop} ${dropKind === "points" ? "pt" : "%"}`,
                maxSize && `size ≤ ${maxSize} MB`,
                maxLatency && `latency ≤ ${maxLatency} ms (estimated)`,
              ]
                .filter(Boolean)
                .join(", ") || "none"}
            </dd>
            <dt className="font-medium">Techniques</dt>
            <dd>{selected.map(techniqueName).join(", ")}</dd>
            {(evalLimit || maxTrain) && (
              <>
                <dt className="font-medium">Run size</dt>
                <dd>
                  {evalLimit && `${evalLimit} test images`} {maxTrain && `${maxTrain} training images`}
                </dd>
              </>
            )}
          </dl>
        )}
        {error != null && <ErrorBox error={error} />}
        <div className="flex flex-wrap justify-between gap-2 pt-2">
          <button type="button" className="btn-secondary" disabled={step === 0} onClick={() => (setError(null), setStep(step - 1))}>
            Back
          </button>
          {step < STEPS.length - 1 ? (
            <button type="button" className="btn-primary" disabled={next.isPending || (step === 5 && selected.length === 0)} onClick={() => next.mutate()}>
              {next.isPending ? "Saving…" : "Next"}
            </button>
          ) : (
            <button type="button" className="btn-primary" disabled={start.isPending} onClick={() => start.mutate()}>
              {start.isPending ? "Starting…" : "Create and start"}
            </button>
          )}
        </div>
      </section>
    </div>
  );
}

function ModelSummaryView({ model }: { model: Summary }) {
  const input = (model.inputs?.[0] ?? {}) as { name?: string; shape?: unknown[]; dtype?: string };
  return (
    <div className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm dark:border-emerald-800 dark:bg-emerald-950" data-testid="model-summary">
      <p className="font-semibold">Imported {model.name || model.file}</p>
      <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-4">
        <dt>Format</dt>
        <dd data-testid="model-format">{model.format}</dd>
        <dt>Parameters</dt>
        <dd data-testid="model-params">{count(model.params)}</dd>
        <dt>MACs</dt>
        <dd>{count(model.macs)}</dd>
        <dt>Input</dt>
        <dd>
          {input.name} [{(input.shape ?? []).map(String).join(" × ")}] {input.dtype}
        </dd>
        {model.size_bytes !== undefined && (
          <>
            <dt>File</dt>
            <dd>{bytes(model.size_bytes)}</dd>
          </>
        )}
      </dl>
      {model.notes && model.notes.length > 0 && (
        <ul className="mt-1 list-disc pl-5">
          {model.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function DropZone({ accept, label, onFile, busy, progress }: { accept: string; label: string; onFile: (f: File) => void; busy: boolean; progress: number }) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const f = e.dataTransfer.files[0];
    if (f) onFile(f);
  };
  return (
    <div
      onDragOver={(e) => (e.preventDefault(), setOver(true))}
      onDragLeave={() => setOver(false)}
      onDrop={drop}
      className={`rounded-lg border-2 border-dashed p-6 text-center ${over ? "border-sky-500 bg-sky-50 dark:bg-sky-950" : "border-slate-300 dark:border-slate-700"}`}
    >
      <p className="text-sm">Drop the file here, or</p>
      <label className="btn-secondary mt-2 cursor-pointer">
        {label}
        <input ref={input} type="file" accept={accept} className="sr-only" disabled={busy} onChange={(e) => e.target.files?.[0] && onFile(e.target.files[0])} data-testid="file-input" />
      </label>
      {busy && (
        <p role="status" className="mt-2 text-sm">
          {progress < 1 ? `Uploading… ${Math.round(progress * 100)} %` : "Importing on the server…"}
        </p>
      )}
    </div>
  );
}

function ModelStep({ id, model, onModel }: { id: string; model: Summary | null; onModel: (m: Summary | null) => void }) {
  const [progress, setProgress] = useState(0);
  const zoo = useQuery({ queryKey: ["zoo"], queryFn: api.zoo });
  const models = ((zoo.data as { models?: { name: string; dataset?: unknown; params?: number; accuracy?: number }[] } | undefined)?.models ?? []).filter(Boolean);
  const up = useMutation({
    mutationFn: (f: File) => (setProgress(0), api.uploadModel(id, f, setProgress)),
    onMutate: () => onModel(null),
    onSuccess: (r) => onModel(r.model as Summary),
  });
  const pick = useMutation({ mutationFn: (n: string) => api.pickZooModel(id, n), onMutate: () => onModel(null), onSuccess: (r) => onModel(r.model as Summary) });
  return (
    <div className="space-y-3">
      <DropZone accept=".onnx,.h5,.keras,.pt,.tflite" label="Choose a model file (.onnx, .h5, .keras, .pt, .tflite)" onFile={(f) => up.mutate(f)} busy={up.isPending} progress={progress} />
      {up.isError && <ErrorBox error={up.error} title="The server could not import this model" />}
      {pick.isError && <ErrorBox error={pick.error} title="Cannot use this zoo model" />}
      <div>
        <h3 className="text-sm font-semibold">Or a model from the zoo</h3>
        {zoo.isError && <ErrorBox error={zoo.error} />}
        {zoo.isSuccess && models.length === 0 && <p className="muted">No zoo model is trained on this server (`edgeopt zoo train NAME --out ZOO_DIR`).</p>}
        <ul className="mt-1 flex flex-wrap gap-2">
          {models.map((m) => (
            <li key={m.name}>
              <button type="button" className="btn-secondary" disabled={pick.isPending} onClick={() => pick.mutate(m.name)}>
                {m.name}{" "}
                <span className="text-xs opacity-75">
                  ({[datasetOf(m.dataset), m.params ? `${count(m.params)} params` : "", m.accuracy ? `${(m.accuracy * 100).toFixed(1)} % measured` : ""].filter(Boolean).join(", ")})
                </span>
              </button>
            </li>
          ))}
        </ul>
      </div>
      {model && <ModelSummaryView model={model} />}
    </div>
  );
}

function DatasetStep(props: {
  id: string;
  type: "preset" | "custom";
  setType: (t: "preset" | "custom") => void;
  name: string;
  setName: (n: string) => void;
  dataset: DatasetUpload["dataset"] | null;
  onDataset: (d: DatasetUpload["dataset"] | null) => void;
  modelDataset?: string;
}) {
  const [progress, setProgress] = useState(0);
  const up = useMutation({
    mutationFn: (f: File) => (setProgress(0), api.uploadDataset(props.id, f, setProgress)),
    onMutate: () => props.onDataset(null),
    onSuccess: (r) => props.onDataset(r.dataset),
  });
  return (
    <div className="space-y-3">
      <fieldset className="space-y-2">
        <legend className="label">Dataset</legend>
        {PRESET_DATASETS.map((d) => (
          <label key={d.id} className="flex items-center gap-2 text-sm">
            <input type="radio" name="dataset" checked={props.type === "preset" && props.name === d.id} onChange={() => (props.setType("preset"), props.setName(d.id))} />
            {d.name} <span className="muted">({d.size})</span>
            {props.modelDataset === d.id && <span className="text-xs">— the zoo model's dataset</span>}
          </label>
        ))}
        <label className="flex items-center gap-2 text-sm">
          <input type="radio" name="dataset" checked={props.type === "custom"} onChange={() => props.setType("custom")} />
          My own images (a ZIP with one folder per class)
        </label>
      </fieldset>
      {props.type === "custom" && (
        <>
          <DropZone accept=".zip" label="Choose a ZIP" onFile={(f) => up.mutate(f)} busy={up.isPending} progress={progress} />
          {up.isError && <ErrorBox error={up.error} title="The server refused this dataset" />}
          {props.dataset && (
            <div className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm dark:border-emerald-800 dark:bg-emerald-950" data-testid="dataset-summary">
              <p className="font-semibold">
                {props.dataset.classes.length} classes · {props.dataset.train_images} training and {props.dataset.test_images} test images
                {props.dataset.image_size && ` · ${props.dataset.image_size.join("×")}`}
              </p>
              <ul className="mt-1 grid grid-cols-2 gap-x-4 sm:grid-cols-3">
                {props.dataset.classes.map((c) => (
                  <li key={c.index}>
                    {c.index}: {c.name} ({c.images})
                  </li>
                ))}
              </ul>
              {props.dataset.split_note && <p className="mt-1">{props.dataset.split_note}</p>}
              {props.dataset.warnings?.map((w) => (
                <p key={w} className="mt-1 text-amber-900 dark:text-amber-200">
                  Warning: {w}
                </p>
              ))}
            </div>
          )}
        </>
      )}
    </div>
  );
}

function DeviceStep({ id, device, setDevice, model }: { id: string; device: string; setDevice: (d: string) => void; model: Summary | null }) {
  const devices = useDevices();
  return (
    <div className="space-y-3">
      {devices.isPending && <Loading what="devices" />}
      {devices.isError && <ErrorBox error={devices.error} />}
      <fieldset>
        <legend className="label">Target device</legend>
        <div className="grid gap-2 sm:grid-cols-2">
          {devices.data?.map((d) => (
            <label key={d.id} className={`flex cursor-pointer gap-2 rounded-md border p-3 text-sm ${device === d.id ? "border-sky-600 bg-sky-50 dark:bg-sky-950" : "border-slate-200 dark:border-slate-800"}`}>
              <input type="radio" name="device" value={d.id} checked={device === d.id} onChange={() => setDevice(d.id)} className="mt-1" />
              <span>
                <span className="font-medium">{d.name}</span>
                <span className="block text-xs text-slate-600 dark:text-slate-400">{keySpecs(d)}</span>
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      {model && <Feasibility id={id} device={device} model={model} />}
    </div>
  );
}

/** What the estimator says about this model on this device before any run: fp32 and int8. */
function Feasibility({ id, device, model }: { id: string; device: string; model: Summary | null }) {
  const fp32 = useQuery({ queryKey: ["estimate", id, device, "fp32", model?.blob], queryFn: () => api.estimate({ experiment_id: id, device, technique: "fp32", precision: "fp32" }), enabled: !!model });
  const int8 = useQuery({ queryKey: ["estimate", id, device, "int8", model?.blob], queryFn: () => api.estimate({ experiment_id: id, device, technique: "fp32", precision: "int8" }), enabled: !!model });
  const size = model?.size_bytes;
  const rows = useMemo(() => [fp32, int8], [fp32, int8]);
  if (!model) return null;
  return (
    <div className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm dark:border-amber-800 dark:bg-amber-950" data-testid="feasibility">
      <p className="font-semibold">
        What is feasible on this device <Est />
      </p>
      <p className="text-xs">Before any run, from the estimator (not measured). The run measures every variant.</p>
      {rows.some((r) => r.isError) && <ErrorBox error={rows.find((r) => r.isError)!.error} title="No estimate" />}
      <ul className="mt-1 space-y-1">
        {(
          [
            ["fp32 (as uploaded)", fp32.data],
            ["int8 (after quantization)", int8.data],
          ] as const
        ).map(([label, e]) =>
          e ? (
            <li key={label}>
              {label}: about {ms(e.latency_ms)} ({ms(e.latency_ms_low)}–{ms(e.latency_ms_high)}) per image
              {e.fits_in_memory === false ? ", does not fit in memory" : e.peak_memory_bytes ? `, peak memory ${bytes(e.peak_memory_bytes)}` : ""}
            </li>
          ) : null,
        )}
        {size !== undefined && <li>Model file now {bytes(size)}; int8 weights are about a quarter of fp32, int4 about an eighth.</li>}
      </ul>
    </div>
  );
}
