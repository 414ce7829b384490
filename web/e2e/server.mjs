// A real `edgeopt serve` on a free loopback port with a temporary store, serving the built UI
// (web/dist), and a headless Debian chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(WEB, "..");
export const ARTIFACTS = process.env.EDGEOPT_WEB_ARTIFACTS ?? join(WEB, "e2e-artifacts");

export function edgeoptBin() {
  const bin = process.env.EDGEOPT_BIN ?? join(ROOT, "build", "edgeopt");
  if (!existsSync(bin)) throw new Error(`no edgeopt binary at ${bin}: build it (make build) or set EDGEOPT_BIN`);
  return bin;
}

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "edgeopt-web-"));
  const proc = spawn(edgeoptBin(), ["serve", "--host", "127.0.0.1", "--port", "0", "--workers", "1", "--store", join(dir, "store"), "--web-dir", join(WEB, "dist"), "--lease-seconds", "4"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  const base = await new Promise((ok, fail) => {
    let out = "";
    const t = setTimeout(() => fail(new Error("serve did not start: " + out + log)), 30000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(t);
        ok(`http://127.0.0.1:${m[1]}`);
      }
    });
    proc.on("exit", (c) => fail(new Error(`serve exited with ${c}: ${out}${log}`)));
  });
  return {
    base,
    dir,
    logs: () => log,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((ok) => (proc.exitCode !== null ? ok() : proc.on("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export async function api(base, method, path, body) {
  const r = await fetch(base + path, { method, headers: body ? { "Content-Type": "application/json" } : undefined, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}
