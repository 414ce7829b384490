// Records a finished experiment's results and the server's what-if rankings over a grid of goals,
// devices and limits into src/lib/rank.fixture.json, for rank.test.ts (the browser's ranking must
// agree with the server's). Usage: node scripts/record-whatif.mjs BASE_URL EXPERIMENT_ID
import { writeFileSync } from "node:fs";

const [base, id] = process.argv.slice(2);
const get = async (path, body) => {
  const r = await fetch(base + path, body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : undefined);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const results = (await get(`/api/results/${id}/results`)).raw;
const slim = (v) => ({
  technique: v.technique,
  status: v.status,
  accuracy: v.accuracy,
  accuracy_ci95: v.accuracy_ci95,
  size_bytes: v.size_bytes,
  device_estimates: (v.device_estimates ?? []).map(({ device, latency_ms, latency_ms_low, latency_ms_high, peak_memory_bytes, fits_in_memory, error }) => ({
    device,
    error,
    latency_ms,
    latency_ms_low,
    latency_ms_high,
    peak_memory_bytes,
    fits_in_memory,
  })),
});
const raw = { baseline: slim(results.baseline), variants: results.variants.map(slim) };
const sizes = [results.baseline, ...results.variants].map((v) => v.size_bytes).sort((a, b) => a - b);
const cases = [];
for (const goal of ["balanced", "minimize_size", "minimize_latency", "maximize_accuracy"])
  for (const device of ["raspberry_pi_4", "coral_dev_board", "stm32h743", "jetson_nano"])
    for (const limits of [
      {},
      { max_accuracy_drop_points: 0.1 },
      { max_accuracy_drop_relative_pct: 0.05 },
      { max_size_mb: (sizes[0] * 1.01) / 1e6 },
      { max_size_mb: sizes[0] / 2 / 1e6 },
      { max_latency_ms: 0.4 },
      { max_memory_mb: 2.5 },
      { max_accuracy_drop_points: 1, max_latency_ms: 0.35 },
    ]) {
      // Nulls clear the experiment's own limits, so each case ranks with exactly these.
      const body = { optimization_goal: goal, target_device: device, max_accuracy_drop_points: null, max_accuracy_drop_relative_pct: null, max_size_mb: null, max_latency_ms: null, max_memory_mb: null, ...limits };
      const rec = (await get(`/api/results/${id}/recommendations`, body)).recommendation;
      cases.push({ body, technique: rec.technique, score: rec.score, meets_limits: rec.meets_limits, confidence: rec.confidence, order: rec.ranking.map((x) => x.technique) });
    }
writeFileSync(new URL("../src/lib/rank.fixture.json", import.meta.url), JSON.stringify({ recorded_from: "a real edgeopt serve run of tests/data/models/fashion_cnn.onnx (ptq_int8, prune_unstructured; 500 test images)", raw, cases }, null, 1) + "\n");
console.log(`${cases.length} cases`);
