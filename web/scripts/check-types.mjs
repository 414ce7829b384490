// Fails when src/api/schema.d.ts no longer matches what openapi-typescript makes from the server's
// OpenAPI document (data/api/openapi.json): the UI's API types must follow the server.
import { execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "edgeopt-types-"));
const fresh = join(dir, "schema.d.ts");
try {
  execFileSync(join(web, "node_modules", ".bin", "openapi-typescript"), [join(web, "..", "data", "api", "openapi.json"), "-o", fresh], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const committed = readFileSync(join(web, "src", "api", "schema.d.ts"), "utf8");
  if (readFileSync(fresh, "utf8") !== committed) {
    console.error("web/src/api/schema.d.ts is out of date with data/api/openapi.json: run `npm run gen-types` in web/ and commit it");
    process.exit(1);
  }
  console.log("API types match data/api/openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
