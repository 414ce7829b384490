// `edgeopt report`: a real `edgeopt optimize` run (fashion_cnn.onnx on Fashion-MNIST, small), its
// report written by the CLI, opened from disk in headless chromium with every network request
// refused: the recommendation, the table, the charts and the per-class view render, no console
// error, no request. Also: hostile text in results.json stays text, and the CLI's errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import AxeBuilder from "@axe-core/playwright";
import { ARTIFACTS, ROOT, edgeoptBin, launchBrowser } from "./server.mjs";

const MODEL = join(ROOT, "tests", "data", "models", "fashion_cnn.onnx");
let dir, browser, results;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "edgeopt-report-"));
  const t0 = performance.now();
  execFileSync(edgeoptBin(), ["optimize", MODEL, "--dataset", "fashion-mnist", "--no-download", "--limit", "300", "--max-train-images", "500",
    "--techniques", "ptq_int8,prune_unstructured", "--device", "raspberry_pi_4", "--out", join(dir, "run")], { stdio: ["ignore", "ignore", "pipe"] });
  console.log(`edgeopt optimize for the report: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  results = JSON.parse(readFileSync(join(dir, "run", "results.json"), "utf8"));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Opens a report file with the network cut off; returns the page, its console errors and every request it tried. */
async function open(file, viewport = { width: 1366, height: 900 }) {
  const context = await browser.newContext({ viewport, offline: true });
  const requests = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:") && url === pathToFileURL(file).href) return route.continue();
    requests.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => r.url() !== pathToFileURL(file).href && !r.url().startsWith("data:") && requests.push(r.url()));
  await page.goto(pathToFileURL(file).href);
  return { page, context, errors, requests };
}

test("edgeopt report writes one file that renders the results with no network", async () => {
  const out = join(dir, "report.html");
  const printed = execFileSync(edgeoptBin(), ["report", join(dir, "run"), "--out", out, "--device", "raspberry_pi_4"], { encoding: "utf8" });
  assert.match(printed, /wrote .*report\.html/);
  console.log(`report: ${(statSync(out).size / 1024).toFixed(0)} KB for ${results.variants.length + 1} variants`);
  const html = readFileSync(out, "utf8");
  assert.doesNotMatch(html, /\s(src|href)="(https?:)?\/\//, "nothing is loaded from elsewhere");
  const { page, context, errors, requests } = await open(out);
  await page.getByTestId("recommendation").waitFor();
  assert.equal(await page.getByTestId("recommended-technique").locator("xpath=following-sibling::code").innerText(), results.recommendation.technique);
  assert.ok((await page.getByTestId("reasoning").innerText()).length > 40, "the engine's reasoning is shown");
  const table = page.getByTestId("variant-table");
  assert.equal(await table.locator("tbody tr").count(), results.variants.length + 1);
  for (const v of results.variants) await table.getByTestId(`row-${v.technique}`).waitFor();
  assert.match(await table.getByTestId("row-ptq_int8").getByTestId("device-latency").innerText(), /(ms|µs).*est\./s, "the target's estimate, marked");
  assert.match(await page.getByTestId("device-comparison").innerText(), /Raspberry Pi 4 Model B/, "the catalogue's device names");
  assert.equal(await page.getByTestId("chart").count(), 2);
  assert.equal(await page.locator(".recharts-surface").count(), 2, "both charts drew");
  assert.ok((await page.locator(".recharts-surface circle, .recharts-surface text").count()) > 3, "the charts have points");
  // Per class: the table and matrix when the run recorded them, else it says so.
  const perClass = page.getByTestId("per-class");
  await perClass.waitFor();
  if (results.baseline.per_class) {
    await perClass.getByTestId("per-class-table").waitFor();
    assert.equal(await perClass.getByTestId("per-class-table").locator("tbody tr").count(), results.baseline.per_class.support.length);
    await perClass.getByTestId("confusion-matrix").waitFor();
  } else {
    await perClass.getByTestId("per-class-missing").waitFor();
  }
  // What if, ranked in the page.
  await page.getByRole("combobox", { name: "Goal", exact: true }).selectOption("minimize_size");
  await page.getByTestId("whatif-ms").waitFor();
  console.log(`report what-if (minimize_size): ${await page.locator("[data-testid=recommendation] code").first().innerText()} in ${await page.getByTestId("whatif-ms").getAttribute("data-ms")} ms`);
  const axe = await new AxeBuilder({ page }).analyze();
  assert.deepEqual(axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`), [], "report accessibility");
  await page.screenshot({ path: join(ARTIFACTS, "20-report-laptop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(ARTIFACTS, "20-report-phone.png"), fullPage: true });
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 391, "no sideways scroll on a phone");
  assert.deepEqual(requests, [], "the report made no network request");
  assert.deepEqual(errors, [], "no console error");
  await context.close();
});

test("text in results.json cannot break out of the embedded data", async () => {
  const evil = join(dir, "evil");
  mkdirSync(evil);
  const hostile = 'evil</script><script>window.__pwned=1</script><!--<script>x';
  writeFileSync(join(evil, "results.json"), JSON.stringify({ ...results, dataset: { ...results.dataset, name: hostile } }));
  const out = join(evil, "report.html");
  execFileSync(edgeoptBin(), ["report", evil, "--out", out]);
  const { page, context, errors } = await open(out);
  await page.getByTestId("report-title").waitFor();
  assert.match(await page.getByTestId("report-title").innerText(), /evil<\/script><script>window.__pwned=1<\/script><!--<script>x/);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.getByTestId("variant-table").waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});

test("per class renders the engine's per_class shape: table, matrix, picker, accessible", async () => {
  // Until every engine records per_class, synthetic counts in its exact shape (results.classes,
  // per_class.{support, correct, accuracy, confusion[true][predicted]}) exercise the view.
  const names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
  const perClass = (hurt) => {
    const confusion = names.map((_, t) => names.map((_, p) => (t === p ? 25 - (t === 6 ? hurt : 0) : (t === 6 && p === 0) ? 2 + hurt : (t + p) % 7 === 0 ? 1 : 0)));
    const support = confusion.map((row) => row.reduce((a, b) => a + b, 0));
    const correct = confusion.map((row, i) => row[i]);
    return { support, correct, accuracy: correct.map((c, i) => c / support[i]), confusion };
  };
  const dirPc = join(dir, "perclass");
  mkdirSync(dirPc);
  const withPc = { ...results, classes: names.map((name, index) => ({ index, name })), baseline: { ...results.baseline, per_class: perClass(0) },
    variants: results.variants.map((v, i) => ({ ...v, per_class: perClass(4 * (i + 1)) })) };
  writeFileSync(join(dirPc, "results.json"), JSON.stringify(withPc));
  const out = join(dirPc, "report.html");
  execFileSync(edgeoptBin(), ["report", dirPc, "--out", out, "--device", "raspberry_pi_4"]);
  const { page, context, errors } = await open(out);
  const section = page.getByTestId("per-class");
  await section.getByTestId("per-class-table").waitFor();
  const table = section.getByTestId("per-class-table");
  assert.equal(await table.locator("tbody tr").count(), 10);
  assert.equal(await table.getByRole("rowheader", { name: "Shirt", exact: true }).count(), 1, "class names are row headers");
  const rec = results.recommendation.technique;
  const hurt = 4 * (results.variants.findIndex((v) => v.technique === rec) + 1);
  assert.match(await section.getByTestId("class-6").innerText(), /▼ .* lower/, "a drop carries an arrow and a word");
  assert.match(await section.getByTestId("per-class-summary").innerText(), /Shirt/);
  const matrix = section.getByTestId("confusion-matrix");
  assert.equal(await matrix.getByRole("columnheader").count(), 11);
  assert.match(await matrix.locator("tbody tr").nth(6).locator("td").first().innerText(), new RegExp(`^${2 + hurt}\\s*\\(\\+${hurt}\\)`));
  await section.getByLabel("Variant against the baseline").selectOption("prune_unstructured");
  const idx = results.variants.findIndex((v) => v.technique === "prune_unstructured");
  await table.getByRole("columnheader", { name: "Unstructured pruning" }).waitFor();
  const pruned = withPc.variants[idx].per_class;
  assert.match(await section.getByTestId("class-6").innerText(), new RegExp(`${((100 * pruned.correct[6]) / pruned.support[6]).toFixed(1)} %`), "the picked variant's figures");
  const axe = await new AxeBuilder({ page }).include("[data-testid=per-class]").analyze();
  assert.deepEqual(axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`), []);
  await section.screenshot({ path: join(ARTIFACTS, "21-per-class-laptop.png") });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.evaluate(() => document.documentElement.classList.add("dark"));
  const dark = await new AxeBuilder({ page }).include("[data-testid=per-class]").analyze();
  assert.deepEqual(dark.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`), [], "dark");
  await section.screenshot({ path: join(ARTIFACTS, "21-per-class-laptop-dark.png") });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: "light" });
  await page.evaluate(() => document.documentElement.classList.remove("dark"));
  await section.screenshot({ path: join(ARTIFACTS, "21-per-class-phone.png") });
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 391, "no sideways scroll on a phone");
  assert.deepEqual(errors, []);
  await context.close();
});

test("edgeopt report says what to do when results.json or the template is missing", () => {
  const run = (...args) => spawnSync(edgeoptBin(), ["report", ...args], { encoding: "utf8" });
  const empty = join(dir, "empty");
  mkdirSync(empty);
  let r = run(empty);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /results\.json/);
  assert.match(r.stderr, /hint: .*edgeopt optimize/);
  r = run(join(dir, "no-such-folder"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no results folder/);
  writeFileSync(join(empty, "results.json"), "{not json");
  r = run(empty);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not JSON/);
  r = run(join(dir, "run"), "--device", "toaster", "--out", join(dir, "x.html"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown --device 'toaster'/);
  assert.match(r.stderr, /raspberry_pi_4/);
  r = run(join(dir, "run"), "--web-dir", empty, "--out", join(dir, "x.html"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /report template/);
  assert.match(r.stderr, /make web/);
});
