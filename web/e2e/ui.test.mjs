// End-to-end: the built UI in headless chromium against a real `edgeopt serve` on loopback, a
// real model (tests/data/models/fashion_cnn.onnx) and Fashion-MNIST. Screenshots of every page
// at laptop and phone sizes go to web/e2e-artifacts; axe checks each page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { ARTIFACTS, ROOT, WEB, api, launchBrowser, startServer } from "./server.mjs";

const MODEL = join(ROOT, "tests", "data", "models", "fashion_cnn.onnx");
const SIZES = { laptop: { width: 1366, height: 900 }, phone: { width: 390, height: 844 } };
let server, browser, context, page;
const consoleErrors = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: SIZES.laptop, acceptDownloads: true });
  page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  if (server) {
    writeFileSync(join(ARTIFACTS, "serve.log"), server.logs());
    await server.stop();
  }
});

/** An experiment of fashion_cnn on Fashion-MNIST created, uploaded and started through the API. */
async function startRun(fields) {
  const e = await api(server.base, "POST", "/api/experiments", { dataset_type: "preset", dataset_name: "fashion_mnist", ...fields });
  const form = new FormData();
  form.append("file", new Blob([readFileSync(MODEL)]), "fashion_cnn.onnx");
  const up = await fetch(`${server.base}/api/upload/${e.id}/model`, { method: "POST", body: form });
  assert.equal(up.status, 200, await up.text());
  await api(server.base, "POST", `/api/optimize/${e.id}/start`);
  return e;
}

/** axe on the page as it is: no serious or critical violation. */
async function checkA11y(name) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`),
    [],
    `accessibility violations on ${name}`,
  );
}

/** Laptop and phone screenshots, light and (laptop) dark. */
async function shoot(name) {
  for (const [size, vp] of Object.entries(SIZES)) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${size}.png`), fullPage: true });
    // Usable on a phone: nothing makes the page scroll sideways (wide tables scroll in their box).
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= vp.width + 1, `${name} is ${wide} px wide on a ${vp.width} px ${size} screen`);
  }
  await page.setViewportSize(SIZES.laptop);
}

async function shootDark(name) {
  await page.emulateMedia({ colorScheme: "dark" });
  await page.evaluate(() => document.documentElement.classList.add("dark"));
  await page.screenshot({ path: join(ARTIFACTS, `${name}-laptop-dark.png`), fullPage: true });
  await checkA11y(name + " (dark)");
  await page.evaluate(() => document.documentElement.classList.remove("dark"));
  await page.emulateMedia({ colorScheme: "light" });
}

test("initial JS is measured (gzipped)", () => {
  const html = readFileSync(join(WEB, "dist", "index.html"), "utf8");
  const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  assert.ok(files.length > 0, "index.html loads no script");
  const gz = files.reduce((n, f) => n + gzipSync(readFileSync(join(WEB, "dist", f))).length, 0);
  console.log(`initial JS: ${files.join(", ")}: ${(gz / 1024).toFixed(1)} KB gzipped (bar: 200 KB)`);
});

test("empty state invites a first run", async () => {
  await page.goto(server.base + "/");
  await page.getByRole("heading", { name: "No experiments yet" }).waitFor();
  assert.ok(await page.getByRole("link", { name: "Start your first experiment" }).isVisible());
  // Keyboard: the first Tab reaches "Skip to content", then the navigation; Enter follows a link.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Experiments");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/new$/);
  await page.goBack();
  await page.getByRole("heading", { name: "No experiments yet" }).waitFor();
  await checkA11y("empty list");
  await shoot("01-empty");
  await shootDark("01-empty");
});

test("devices page lists the catalogue with specs", async () => {
  await page.getByRole("link", { name: "Devices" }).click();
  await page.getByRole("heading", { name: "Devices", level: 1 }).waitFor();
  const cards = page.getByTestId("device-card");
  await cards.first().waitFor();
  const devices = (await api(server.base, "GET", "/api/devices")).devices;
  assert.equal(await cards.count(), devices.length);
  assert.ok((await page.getByText("Raspberry Pi 4 Model B").count()) > 0);
  assert.match(await cards.first().innerText(), /Runtimes/);
  await checkA11y("devices");
  await shoot("02-devices");
});

test("an invalid upload shows the server's error", async () => {
  await page.goto(server.base + "/new");
  await page.getByRole("textbox", { name: "Name" }).fill("broken upload");
  await page.getByRole("button", { name: "Next" }).click();
  const bogus = join(server.dir, "not-a-model.onnx");
  writeFileSync(bogus, "this is not an ONNX file");
  await page.getByTestId("file-input").setInputFiles(bogus);
  const msg = page.getByTestId("error-message");
  await msg.waitFor();
  assert.ok((await msg.innerText()).length > 10, "the error message is shown");
  await checkA11y("wizard with an upload error");
  await shoot("03-upload-error");
});

let expId;
test("the wizard creates and starts a run; progress survives a reload; results show", async () => {
  await page.goto(server.base + "/new");
  await page.getByRole("textbox", { name: "Name" }).fill("fashion cnn on a pi 4");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByTestId("file-input").setInputFiles(MODEL);
  await page.getByTestId("model-summary").waitFor();
  assert.equal(await page.getByTestId("model-format").innerText(), "onnx");
  assert.match(await page.getByTestId("model-params").innerText(), /106 k/);
  await shoot("04-wizard-model");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel("Fashion-MNIST").check();
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel(/Raspberry Pi 4 Model B/).check();
  await page.getByTestId("feasibility").getByText(/int8 \(after quantization\): about/).waitFor();
  await checkA11y("wizard device step");
  await shoot("05-wizard-device");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("combobox", { name: "Goal" }).selectOption("balanced");
  await page.getByLabel("Largest accuracy drop").fill("1");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("checkbox", { name: /distillation/ }).waitFor(); // the technique list has loaded
  for (const box of await page.getByRole("checkbox").all()) await box.uncheck();
  await page.getByRole("checkbox", { name: /ptq_int8/ }).check();
  await page.getByRole("checkbox", { name: /prune_unstructured/ }).check();
  await page.getByText("Advanced: run size").click();
  await page.getByLabel(/Test images to score/).fill("500");
  await page.getByLabel(/Training images/).fill("1000");
  await checkA11y("wizard techniques step");
  await page.getByRole("button", { name: "Next" }).click();
  const review = await page.getByTestId("review").innerText();
  assert.match(review, /Post-training int8/);
  assert.match(review, /500 test images/);
  assert.doesNotMatch(review, /Distillation/, "only the chosen techniques run");
  await shoot("06-wizard-review");
  await page.getByRole("button", { name: "Create and start" }).click();
  await page.waitForURL(/\/experiments\/[a-z0-9]+$/);
  expId = page.url().split("/").pop();

  // Live progress: wait for the baseline, then reload mid-run.
  await page.getByTestId("progress-fp32").getByText("completed").waitFor({ timeout: 60000 });
  await shoot("07-progress");
  const streams = [];
  page.on("request", (r) => r.url().includes("/progress-stream") && streams.push(r.url()));
  await page.reload();
  await page.getByRole("heading", { name: "Recommendation" }).waitFor({ timeout: 120000 });
  assert.ok(streams.length >= 1, "the page opened the stream again after the reload");
  const resumedFrom = Number(new URL(streams[0]).searchParams.get("last_event_id"));
  assert.ok(resumedFrom > 0, `the stream resumed after the last event seen (${streams[0]})`);
  console.log(`reload mid-run resumed the stream after event ${resumedFrom}`);
  // The reloaded page kept every technique's row, finished with its measured metrics.
  assert.match(await page.getByTestId("progress-ptq_int8").innerText(), /completed/);
  assert.match(await page.getByTestId("progress-ptq_int8").innerText(), /\d+\.\d\d %/);

  const rec = page.getByTestId("recommendation");
  assert.ok((await page.getByTestId("reasoning").innerText()).length > 40, "the reasoning is shown");
  const table = page.getByTestId("variant-table");
  for (const t of ["fp32", "ptq_int8", "prune_unstructured"]) await table.getByTestId(`row-${t}`).waitFor();
  assert.match(await table.innerText(), /est\./, "estimates are marked");
  assert.match(await table.getByTestId("row-ptq_int8").getByTestId("device-latency").innerText(), /(ms|µs).*est\./s);
  assert.equal(await page.getByTestId("chart").count(), 2);
  await page.locator(".recharts-surface").first().waitFor();
  const server_rec = await api(server.base, "GET", `/api/results/${expId}/recommendations`);
  assert.match(await rec.getByTestId("recommended-technique").innerText(), new RegExp(server_rec.recommendation.technique === "ptq_int8" ? "Post-training int8" : "."));
  // Per class: the table and confusion matrix when the engine recorded them, else it says so.
  const raw = (await api(server.base, "GET", `/api/results/${expId}/results`)).raw;
  const perClass = page.getByTestId("per-class");
  await perClass.waitFor();
  if (raw.baseline.per_class) {
    const n = raw.baseline.per_class.support.length;
    assert.equal(await perClass.getByTestId("per-class-table").locator("tbody tr").count(), n);
    assert.equal(await perClass.getByTestId("confusion-matrix").locator("tbody tr").count(), n);
    if (raw.classes?.length) assert.match(await perClass.getByTestId("per-class-table").innerText(), new RegExp(raw.classes[0].name));
    for (const t of ["ptq_int8", "prune_unstructured"]) {
      await perClass.getByLabel("Variant against the baseline").selectOption(t);
      const v = raw.variants.find((x) => x.technique === t).per_class;
      const first = await perClass.getByTestId("confusion-matrix").locator("tbody tr").first().locator("td").first().innerText();
      assert.equal(Number(first.split("\n")[0]), v.confusion[0][0], `${t}: the matrix shows the recorded counts`);
    }
    console.log(`per class: ${n} classes, summary: ${await perClass.getByTestId("per-class-summary").innerText()}`);
  } else {
    await perClass.getByTestId("per-class-missing").waitFor();
    console.log("per class: this engine records no per_class yet; the page says so");
  }
  await checkA11y("results");
  await shoot("08-results");
  await shootDark("08-results");
});

test("what-if: a changed goal or limit re-ranks without a re-run, as the server ranks", async () => {
  const first = await page.getByTestId("recommended-technique").innerText();
  let changed = null;
  for (const goal of ["maximize_accuracy", "minimize_size", "minimize_latency"]) {
    await page.getByRole("combobox", { name: "Goal", exact: true }).selectOption(goal);
    await page.getByTestId("whatif-ms").waitFor();
    await page.waitForFunction(() => document.querySelector("[data-testid=recommendation] h2")?.textContent?.includes("what if"));
    const expected = (await api(server.base, "POST", `/api/results/${expId}/recommendations`, { optimization_goal: goal, max_accuracy_drop_points: 1 })).recommendation.technique;
    await page.waitForFunction(
      (t) => document.querySelector("[data-testid=recommendation] code")?.textContent === t,
      expected,
      { timeout: 10000 },
    );
    await page.getByTestId("whatif-server-ms").waitFor();
    await page.getByTestId("reasoning").getByText(expected).first().waitFor();
    console.log(
      `what-if ${goal}: ${expected}; ranked in the browser and shown in ${await page.getByTestId("whatif-ms").getAttribute("data-ms")} ms, ` +
        `the server's answer (same pick) in ${await page.getByTestId("whatif-server-ms").getAttribute("data-ms")} ms`,
    );
    if ((await page.getByTestId("recommended-technique").innerText()) !== first) changed = goal;
  }
  // A size limit below every variant but one changes the pick too.
  await page.getByRole("combobox", { name: "Goal", exact: true }).selectOption("maximize_accuracy");
  const sizes = await api(server.base, "GET", `/api/results/${expId}/results`);
  const smallest = sizes.results.filter((r) => r.status === "completed").sort((a, b) => a.size_bytes - b.size_bytes)[0];
  await page.getByLabel("Max size (MB)").fill(String((smallest.size_bytes * 1.01) / 1e6));
  await page.waitForFunction((t) => document.querySelector("[data-testid=recommendation] code")?.textContent === t, smallest.technique, { timeout: 10000 });
  console.log(`what-if size limit ${((smallest.size_bytes * 1.01) / 1e6).toFixed(3)} MB picks ${smallest.technique}, shown in ${await page.getByTestId("whatif-ms").getAttribute("data-ms")} ms`);
  assert.ok(changed !== null || smallest.technique !== first, "some what-if changed the pick");
  await shoot("09-what-if");
  await page.getByRole("button", { name: "Back to the run's settings" }).click();
});

test("the report's shaping of results.json agrees with the server's rows", async () => {
  const { resultsFromRaw } = await import("./report-shaping.mjs");
  const served = await api(server.base, "GET", `/api/results/${expId}/results`);
  const mine = resultsFromRaw(served.raw, expId, served.target_device ?? "");
  // Every field the server gives, with the same value (the port may already carry fields a newer
  // engine adds, as null).
  const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o[k]]));
  const rows = JSON.parse(JSON.stringify(mine.results));
  assert.equal(rows.length, served.results.length);
  served.results.forEach((row, i) => assert.deepEqual(pick(rows[i], Object.keys(row)), row, row.technique));
});

test("a variant's package downloads with real bytes", async () => {
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-ptq_int8").click()]);
  const path = join(ARTIFACTS, "ptq_int8.zip");
  await download.saveAs(path);
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(0, 2).toString(), "PK", "a ZIP");
  assert.ok(statSync(path).size > 50000, `the package holds the model (${statSync(path).size} bytes)`);
  assert.ok(bytes.includes(Buffer.from("metadata.json")));
});

test("a zoo model can be picked instead of an upload", async () => {
  // The checkout's pretrained zoo (data/zoo/pretrained), as `edgeopt serve` offers it by default.
  const zoo = await api(server.base, "GET", "/api/zoo");
  const model = zoo.models.find((m) => m.name === "fashion-mnist-small");
  assert.ok(model, `the pretrained zoo offers fashion-mnist-small (${zoo.models.map((m) => m.name)})`);
  await page.goto(server.base + "/new");
  await page.getByRole("textbox", { name: "Name" }).fill("zoo pick");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByRole("button", { name: /fashion-mnist-small/ }).click();
  await page.getByTestId("model-summary").waitFor();
  assert.equal(await page.getByTestId("model-format").innerText(), "eom");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText("the zoo model's dataset").waitFor();
  await checkA11y("wizard with a zoo model");
  await shoot("12-wizard-zoo");
});

test("a dataset ZIP gets the server's validation (classes, images, warnings)", async () => {
  // Two classes of small PNGs, zipped by Python's zipfile (as a user's folder would be).
  const { execFileSync } = await import("node:child_process");
  const zip = join(server.dir, "shapes.zip");
  execFileSync("python3", ["-c", `
import struct, sys, zipfile, zlib
def png(v):
    raw = b"".join(b"\\x00" + bytes([v]) * 96 for _ in range(32))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for c, v in (("circle", 40), ("square", 200)):
        for i in range(12):
            z.writestr(f"shapes/{c}/{i}.png", png(v + i))
`, zip]);
  await page.goto(server.base + "/new");
  await page.getByRole("textbox", { name: "Name" }).fill("zip dataset");
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByTestId("file-input").setInputFiles(MODEL);
  await page.getByTestId("model-summary").waitFor();
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByLabel(/My own images/).check();
  await page.getByTestId("file-input").setInputFiles(zip);
  const summary = page.getByTestId("dataset-summary");
  await summary.waitFor();
  const text = await summary.innerText();
  assert.match(text, /2 classes/);
  assert.match(text, /circle/);
  assert.match(text, /square/);
  await checkA11y("wizard with a dataset ZIP");
  await shoot("13-wizard-dataset-zip");
  const id = (await api(server.base, "GET", "/api/experiments?q=zip%20dataset")).items[0].id;
  await api(server.base, "DELETE", `/api/experiments/${id}`);
});

/** Time from the navigation's start to the recommendation, the what-if controls and a chart on
 * screen, taken in the page; three loads, the median printed with the machine's load (a timing
 * goal is reported, not asserted). */
async function timeResultsPage(id) {
  const times = [];
  for (let i = 0; i < 3; i++) {
    await page.goto(`${server.base}/experiments/${id}`);
    const t = await page.waitForFunction(
      () => document.querySelector("[data-testid=recommended-technique]") && document.querySelector("#wi-goal") && document.querySelector(".recharts-surface") && performance.now(),
    );
    times.push(await t.jsonValue());
  }
  times.sort((a, b) => a - b);
  const n = await page.getByTestId("variant-table").locator("tbody tr").count();
  const { loadavg } = await import("node:os");
  console.log(`results page with ${n} rows (baseline + ${n - 1} variants) interactive (recommendation, what-if, charts) in ${times[1].toFixed(0)} ms (median of ${times.map((x) => x.toFixed(0)).join(", ")}; load average ${loadavg()[0].toFixed(1)} on this machine)`);
}

test("the results page of a finished run is interactive quickly (measured)", async () => {
  await timeResultsPage(expId);
});

test("compare two experiments side by side", async () => {
  // A second run of the same model on another device, through the API.
  // Every technique (eight variants), small: also the run whose results page is timed below.
  const listed = await api(server.base, "GET", "/api/techniques");
  const techniques = (Array.isArray(listed) ? listed : listed.techniques).map((t) => t.id);
  const e = await startRun({ name: "fashion cnn on a jetson", target_device: "jetson_nano", techniques, eval_limit: 300, max_train_images: 500 });
  const t0 = Date.now();
  let status;
  for (let i = 0; i < 1200; i++) {
    status = (await api(server.base, "GET", `/api/experiments/${e.id}`)).status;
    if (status === "completed" || status === "failed") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(status, "completed");
  console.log(`a run of all ${techniques.length} techniques (300 test, 500 training images) took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  await timeResultsPage(e.id);
  await checkA11y("results of eight variants");
  await shoot("14-results-8-variants");
  await page.goto(`${server.base}/compare?ids=${expId},${e.id}`);
  const table = page.getByTestId("compare-table");
  await table.getByText("fashion cnn on a jetson").waitFor();
  await table.getByText(/on jetson_nano/).first().waitFor();
  await checkA11y("compare");
  await shoot("10-compare");
});

test("cancel stops a running experiment", async () => {
  const e = await startRun({ name: "to cancel", target_device: "raspberry_pi_4", techniques: ["qat_int8", "distillation"] });
  await page.goto(`${server.base}/experiments/${e.id}`);
  await page.getByTestId("connection").getByText("live").waitFor({ timeout: 30000 });
  await page.getByRole("button", { name: "Cancel run" }).click();
  await page.getByRole("heading", { level: 1 }).locator("..").getByTestId("status").getByText("cancelled").waitFor({ timeout: 60000 });
  assert.equal((await api(server.base, "GET", `/api/experiments/${e.id}`)).status, "cancelled");
});

test("the list shows badges and filters; delete asks first", async () => {
  await page.goto(server.base + "/");
  await page.getByTestId("experiment-card").first().waitFor();
  const total = await page.getByTestId("experiment-card").count();
  assert.ok(total >= 3);
  await page.getByLabel("Status").selectOption("cancelled");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=experiment-card]").length === 1);
  await page.getByLabel("Status").selectOption("");
  await page.getByLabel("Device").selectOption("jetson_nano");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=experiment-card]").length === 1);
  await page.getByLabel("Device").selectOption("");
  await page.getByLabel("Dataset").selectOption("fashion-mnist");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=experiment-card]").length === n, total);
  await page.getByLabel("Dataset").selectOption("cifar10");
  await page.getByText("No experiment matches these filters.").waitFor();
  await page.getByLabel("Dataset").selectOption("");
  await page.getByLabel("Search").fill("jetson");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=experiment-card]").length === 1);
  await page.getByLabel("Search").fill("");
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=experiment-card]").length === n, total);
  await checkA11y("experiments list");
  await shoot("11-list");
  await page.getByRole("button", { name: "Delete broken upload" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await checkA11y("delete confirmation");
  await dialog.getByRole("button", { name: "Keep it" }).click();
  assert.equal(await page.getByTestId("experiment-card").count(), total, "keeping it keeps it");
  await page.getByRole("button", { name: "Delete broken upload" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=experiment-card]").length === n - 1, total);
  const left = await api(server.base, "GET", "/api/experiments");
  assert.ok(!left.items.some((x) => x.name === "broken upload"));
});

test("an unknown experiment shows the server's error, not a blank page", async () => {
  await page.goto(server.base + "/experiments/nosuchexperiment");
  await page.getByTestId("error-message").waitFor();
  assert.match(await page.getByTestId("error-message").innerText(), /no experiment/);
  assert.deepEqual(consoleErrors.filter((e) => !/404|409|Failed to load resource/.test(e)), []);
});
