// The trade-off charts: accuracy against a cost (size, or estimated device latency), the Pareto
// front drawn as a line, the user's limits as dashed lines.
import { memo } from "react";
import { CartesianGrid, Label, Line, ReferenceLine, ResponsiveContainer, Scatter, ComposedChart, Tooltip, XAxis, YAxis, ErrorBar } from "recharts";
import type { ChartPoint } from "../lib/results";
import { techniqueName, trim } from "../lib/format";

export const TradeoffChart = memo(function TradeoffChart(props: {
  title: string;
  xLabel: string;
  points: ChartPoint[];
  xLimit?: number | null;
  yLimit?: number | null;
  estimate?: boolean;
}) {
  const front = props.points.filter((p) => p.pareto).sort((a, b) => a.cost - b.cost);
  const withErr = props.points.map((p) => ({ ...p, err: p.low !== undefined && p.high !== undefined ? [p.cost - p.low, p.high - p.cost] : undefined }));
  const desc = `${props.title}: ${props.points.map((p) => `${techniqueName(p.id)} ${trim(p.accuracy)} % at ${trim(p.cost)}`).join("; ")}. Pareto front: ${front.map((p) => p.id).join(", ")}.`;
  return (
    <figure className="card overflow-hidden" data-testid="chart">
      <figcaption className="mb-2 text-sm font-semibold">
        {props.title} {props.estimate && <span className="est">x axis: estimates</span>}
      </figcaption>
      <div role="img" aria-label={desc} className="h-72 w-full">
        <ResponsiveContainer width="100%" height="100%">
          <ComposedChart margin={{ top: 10, right: 20, bottom: 30, left: 10 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="currentColor" strokeOpacity={0.15} />
            <XAxis type="number" dataKey="cost" name={props.xLabel} domain={["auto", "auto"]} padding={{ left: 24, right: 48 }} tickFormatter={(v) => trim(v)} stroke="currentColor">
              <Label value={props.xLabel} position="bottom" offset={10} fill="currentColor" />
            </XAxis>
            <YAxis
              type="number"
              dataKey="accuracy"
              name="accuracy %"
              domain={[(lo: number) => Math.floor(Math.min(lo, props.yLimit ?? lo) - 0.5), (hi: number) => Math.ceil(hi + 0.5)]}
              allowDecimals
              tickFormatter={(v) => Number(v).toFixed(1)}
              stroke="currentColor"
              width={50}
            >
              <Label value="accuracy %" angle={-90} position="insideLeft" fill="currentColor" />
            </YAxis>
            <Tooltip
              cursor={{ strokeDasharray: "3 3" }}
              content={({ payload }) => {
                const p = payload?.[0]?.payload as ChartPoint | undefined;
                if (!p) return null;
                return (
                  <div className="rounded border border-slate-300 bg-white p-2 text-xs text-slate-900 shadow dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100">
                    <p className="font-semibold">{techniqueName(p.id)}</p>
                    <p>
                      {trim(p.accuracy)} % · {trim(p.cost)} {props.xLabel}
                      {props.estimate && " (estimate)"}
                    </p>
                    {p.pareto && <p>on the Pareto front</p>}
                  </div>
                );
              }}
            />
            {props.xLimit != null && <ReferenceLine x={props.xLimit} stroke="#dc2626" strokeDasharray="6 4" label={{ value: "limit", fill: "#dc2626", position: "top" }} />}
            {props.yLimit != null && <ReferenceLine y={props.yLimit} stroke="#dc2626" strokeDasharray="6 4" label={{ value: "accuracy floor", fill: "#dc2626", position: "insideBottomRight" }} />}
            <Line data={front} dataKey="accuracy" type="linear" stroke="#0284c7" strokeWidth={2} dot={false} isAnimationActive={false} name="Pareto front" legendType="none" />
            <Scatter data={withErr} fill="#64748b" isAnimationActive={false} shape={(s: { cx?: number; cy?: number; payload?: ChartPoint }) => <Dot {...s} />}>
              {props.estimate && <ErrorBar dataKey="err" direction="x" stroke="#94a3b8" width={4} />}
            </Scatter>
          </ComposedChart>
        </ResponsiveContainer>
      </div>
      <p className="muted mt-1 text-xs">
        Blue line: the Pareto front (no other variant is both more accurate and cheaper). ★ the recommendation. Dashed red: your limits.
        {props.estimate && " Horizontal bars: the estimator's interval."}
      </p>
    </figure>
  );
});

function Dot({ cx, cy, payload }: { cx?: number; cy?: number; payload?: ChartPoint }) {
  if (cx === undefined || cy === undefined || !payload) return null;
  const fill = payload.pareto ? "#0284c7" : "#94a3b8";
  return (
    <g>
      {payload.recommended ? (
        <text x={cx} y={cy + 6} textAnchor="middle" fontSize={18} fill="#f59e0b" stroke="#78350f" strokeWidth={0.5}>
          ★
        </text>
      ) : (
        <circle cx={cx} cy={cy} r={5} fill={fill} stroke="#0f172a" strokeWidth={0.5} />
      )}
      <text x={cx + 8} y={cy - 8} fontSize={11} fill="currentColor">
        {payload.id}
      </text>
    </g>
  );
}
