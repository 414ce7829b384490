// Makes dist/report.html (the `edgeopt report` template) from the report build: every script and
// stylesheet the page loads is put inline, so the file works alone, offline. Fails when anything
// would still be fetched.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(WEB, "build-report");
let html = readFileSync(join(BUILD, "report.html"), "utf8");
const asset = (ref) => readFileSync(join(BUILD, ref.replace(/^\.?\//, "")), "utf8");

// Inside a <script> element "</script" ends it and "<!--" changes how it is parsed: break both
// (in the bundle they occur only inside strings and regular expressions, where "<\/" and "<\!" mean the same).
const safeJs = (js) => js.replace(/<\/script/gi, "<\\/script").replace(/<!--/g, "<\\!--");
html = html.replace(/<script\b([^>]*)\ssrc="([^"]+)"([^>]*)><\/script>/g, (_, a, src, b) => {
  const attrs = `${a}${b}`.replace(/\s+crossorigin(="[^"]*")?/g, "");
  return `<script${attrs}>${safeJs(asset(src))}</script>`;
});
html = html.replace(/<link\b[^>]*rel="stylesheet"[^>]*href="([^"]+)"[^>]*>/g, (_, href) => `<style>${asset(href).replace(/<\/style/gi, "<\\/style")}</style>`);
html = html.replace(/<link\b[^>]*rel="modulepreload"[^>]*>/g, "");

const left = [...html.matchAll(/\s(?:src|href)="(?!data:|#)([^"]+)"/g)].map((m) => m[1]);
if (left.length) throw new Error(`report.html still loads ${left.join(", ")}`);
const marker = '<script type="application/json" id="edgeopt-results">@@EDGEOPT_RESULTS@@</script>';
if (html.split(marker).length !== 2) throw new Error("report.html must hold the results placeholder exactly once");
mkdirSync(join(WEB, "dist"), { recursive: true });
writeFileSync(join(WEB, "dist", "report.html"), html);
console.log(`dist/report.html: ${(html.length / 1024).toFixed(0)} KB, self-contained`);
