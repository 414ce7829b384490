// Typed calls to the EdgeOpt server; every failure becomes an ApiError carrying the server's
// {error: {code, message, details.hint}} so pages can show it instead of going blank.
import type { components } from "./schema";

export type Schemas = components["schemas"];
export type Experiment = Schemas["Experiment"];
export type ExperimentPage = Schemas["ExperimentPage"];
export type ExperimentCreate = Schemas["ExperimentCreate"];
export type ModelUpload = Schemas["ModelUpload"];
export type DatasetUpload = Schemas["DatasetUpload"];
export type Results = Schemas["Results"];
export type ResultRow = Schemas["ResultRow"];
export type Recommendations = Schemas["Recommendations"];
export type WhatIf = Schemas["WhatIf"];
export type Estimate = Schemas["Estimate"];
export type EstimateRequest = Schemas["EstimateRequest"];
export type TechniqueState = Schemas["TechniqueState"];

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public hint?: string,
  ) {
    super(message);
  }
}

async function parse<T>(r: Response): Promise<T> {
  const text = await r.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: reported below */
  }
  if (!r.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: { hint?: string } } } | undefined)?.error;
    throw new ApiError(r.status, e?.code ?? "http_" + r.status, e?.message ?? (text.slice(0, 300) || r.statusText), e?.details?.hint);
  }
  if (body === undefined) throw new ApiError(r.status, "bad_response", "the server answered something that is not JSON");
  return body as T;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let r: Response;
  try {
    r = await fetch(path, {
      method,
      headers: body === undefined ? undefined : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", "cannot reach the EdgeOpt server (" + String(e) + ")", "is `edgeopt serve` running?");
  }
  return parse<T>(r);
}

/** Multipart upload with progress (fetch has no upload progress). */
function upload<T>(path: string, form: FormData, onProgress?: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", path);
    x.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    x.onerror = () => reject(new ApiError(0, "network", "the upload did not reach the server", "is `edgeopt serve` running?"));
    x.onload = () => parse<T>(new Response(x.responseText, { status: x.status, statusText: x.statusText })).then(resolve, reject);
    x.send(form);
  });
}

export type Device = {
  id: string;
  name: string;
  aliases?: string[];
  [key: string]: unknown;
};

export type Technique = {
  id: string;
  name?: string;
  description?: string;
  parameters?: { name: string; default?: unknown; description?: string; type?: string; [k: string]: unknown }[];
  [key: string]: unknown;
};

// The OpenAPI document leaves event data as a bare object (openapi-typescript: Record<string, never>).
export type Event = Omit<Schemas["Event"], "data"> & { data: Record<string, unknown> };

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}

export const api = {
  experiments: (f: { q?: string; status?: string; device?: string; goal?: string; dataset?: string; limit?: number; offset?: number }) =>
    call<ExperimentPage>("GET", "/api/experiments" + qs(f)),
  experiment: (id: string) => call<Experiment>("GET", `/api/experiments/${id}`),
  create: (body: ExperimentCreate) => call<Experiment>("POST", "/api/experiments", body),
  patch: (id: string, body: Partial<ExperimentCreate>) => call<Experiment>("PATCH", `/api/experiments/${id}`, body),
  remove: (id: string) => call<Schemas["Deleted"]>("DELETE", `/api/experiments/${id}`),
  uploadModel: (id: string, file: File, onProgress?: (f: number) => void) => {
    const form = new FormData();
    form.append("file", file);
    return upload<ModelUpload>(`/api/upload/${id}/model`, form, onProgress);
  },
  pickZooModel: (id: string, name: string) => {
    const form = new FormData();
    form.append("model_source", "pretrained");
    form.append("pretrained_model_name", name);
    return upload<ModelUpload>(`/api/upload/${id}/model`, form);
  },
  uploadDataset: (id: string, file: File, onProgress?: (f: number) => void) => {
    const form = new FormData();
    form.append("file", file);
    return upload<DatasetUpload>(`/api/upload/${id}/dataset`, form, onProgress);
  },
  start: (id: string) => call<Experiment>("POST", `/api/optimize/${id}/start`),
  stop: (id: string) => call<Experiment>("POST", `/api/optimize/${id}/stop`),
  events: (id: string) => call<Schemas["Events"]>("GET", `/api/optimize/${id}/events`),
  results: (id: string) => call<Results>("GET", `/api/results/${id}/results`),
  recommendations: (id: string) => call<Recommendations>("GET", `/api/results/${id}/recommendations`),
  whatIf: (id: string, body: WhatIf) => call<Recommendations>("POST", `/api/results/${id}/recommendations`, body),
  estimate: (body: EstimateRequest) => call<Estimate>("POST", "/api/estimate", body),
  devices: () => call<{ devices: Device[] } | Device[]>("GET", "/api/devices").then((d) => (Array.isArray(d) ? d : d.devices)),
  techniques: () => call<{ techniques: Technique[] } | Technique[]>("GET", "/api/techniques").then((d) => (Array.isArray(d) ? d : d.techniques)),
  datasets: () => call<unknown>("GET", "/api/datasets"),
  zoo: () => call<unknown>("GET", "/api/zoo"),
  downloadUrl: (id: string, technique: string) => `/api/results/${id}/download/${encodeURIComponent(technique)}`,
  streamUrl: (id: string) => `/api/optimize/${id}/progress-stream`,
};
