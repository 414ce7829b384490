// The report's data shaping (src/lib/report.ts and what it imports), compiled here with the
// TypeScript compiler so the e2e run can compare it with a live server's answer.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { WEB } from "./server.mjs";

const out = mkdtempSync(join(tmpdir(), "edgeopt-shaping-"));
for (const name of ["report", "rank"]) {
  const src = readFileSync(join(WEB, "src", "lib", `${name}.ts`), "utf8");
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false } }).outputText;
  writeFileSync(join(out, `${name}.mjs`), js.replace(/from "\.\/(\w+)"/g, 'from "./$1.mjs"'));
}
export const { resultsFromRaw, localRecommendations, estimatedDevices } = await import(join(out, "report.mjs"));
rmSync(out, { recursive: true, force: true }); // loaded: the compiled copies are no longer needed
