import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// `npm run dev` proxies the API to a local `edgeopt serve` (EDGEOPT_API, default :8000).
export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { proxy: { "/api": process.env.EDGEOPT_API ?? "http://127.0.0.1:8000" } },
  test: { include: ["src/**/*.test.ts"] },
});
