import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// The `edgeopt report` template: report.html with its script and styles in one chunk each (no
// code splitting, assets inlined as data: URLs); scripts/inline-report.mjs then inlines them into
// dist/report.html, a single file that needs no network.
export default defineConfig({
  plugins: [react(), tailwindcss()],
  base: "./",
  build: {
    outDir: "build-report",
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: Number.MAX_SAFE_INTEGER,
    cssCodeSplit: false,
    modulePreload: false,
    chunkSizeWarningLimit: 2000, // one file by design
    rolldownOptions: { input: "report.html", output: { codeSplitting: false } },
  },
});
