import { Empty, ErrorBox, Loading } from "../components/ui";
import { get, keySpecs, precisions, runtimes, estimatorError } from "../lib/device";
import { useDevices } from "../lib/queries";

export function DevicesPage() {
  const devices = useDevices();
  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-semibold">Devices</h1>
      <p className="muted max-w-prose">
        The boards EdgeOpt estimates on. Latency and memory on these devices are <strong>estimates</strong> from a calibrated model of each board; the
        error shown is the estimator's measured error against published benchmark figures.
      </p>
      {devices.isPending && <Loading what="the device catalogue" />}
      {devices.isError && <ErrorBox error={devices.error} title="Cannot read the device catalogue" />}
      {devices.data?.length === 0 && <Empty>The server has no devices in its catalogue.</Empty>}
      <ul className="grid gap-3 md:grid-cols-2 xl:grid-cols-3" aria-label="Devices">
        {devices.data?.map((d) => (
          <li key={d.id} className="card space-y-2" data-testid="device-card">
            <h2 className="font-semibold">{d.name}</h2>
            <p className="text-xs text-slate-600 dark:text-slate-400">
              <code>{d.id}</code>
              {Array.isArray(d.aliases) && d.aliases.length > 0 && <> · also “{d.aliases.join("”, “")}”</>}
            </p>
            <p className="text-sm">{keySpecs(d)}</p>
            <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-sm">
              <dt className="text-slate-600 dark:text-slate-400">Memory</dt>
              <dd>{[get(d, "memory.type"), get(d, "memory.bandwidth_gbs") && `${get(d, "memory.bandwidth_gbs")} GB/s`].filter(Boolean).join(", ") || "—"}</dd>
              <dt className="text-slate-600 dark:text-slate-400">Power</dt>
              <dd>
                {get(d, "power.idle_w") !== undefined ? `${get(d, "power.idle_w")} W idle, ${get(d, "power.load_w") ?? "?"} W load` : "—"}
              </dd>
              <dt className="text-slate-600 dark:text-slate-400">Runtimes</dt>
              <dd>{runtimes(d).map((r) => `${r.id}${r.unit ? ` (${r.unit})` : ""}`).join(", ") || "—"}</dd>
              <dt className="text-slate-600 dark:text-slate-400">Precisions</dt>
              <dd>{precisions(d).join(", ") || "—"}</dd>
              <dt className="text-slate-600 dark:text-slate-400">Estimator error</dt>
              <dd data-testid="estimator-error">{estimatorError(d) ?? "not validated on published figures"}</dd>
            </dl>
          </li>
        ))}
      </ul>
    </div>
  );
}
