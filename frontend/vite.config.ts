/// <reference types="vitest/config" />
import { readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

// The built app ships inside the Python package: kraken/web (served by kraken/api/static.py).
const outDir = resolve(__dirname, "../kraken/web");

/** Empty kraken/web before a build but keep its .gitkeep (Vite's emptyOutDir would remove it). */
function cleanOutDir(): Plugin {
  return {
    name: "kraken-clean-outdir",
    apply: "build",
    buildStart() {
      mkdirSync(outDir, { recursive: true });
      for (const name of readdirSync(outDir)) {
        if (name !== ".gitkeep" && name !== "__init__.py") rmSync(join(outDir, name), { recursive: true, force: true });
      }
    },
  };
}

/** Write a .gz twin of each asset: kraken/api/static.py sends it to browsers that accept gzip. */
function precompress(): Plugin {
  return {
    name: "kraken-precompress",
    apply: "build",
    closeBundle() {
      const dir = join(outDir, "assets");
      for (const name of readdirSync(dir)) {
        if (!/\.(js|css|svg|json|html)$/.test(name)) continue;
        const data = readFileSync(join(dir, name));
        if (data.length < 1024) continue;
        writeFileSync(join(dir, `${name}.gz`), gzipSync(data, { level: 9 }));
      }
    },
  };
}

const apiTarget = process.env.KRAKEN_URL ?? "http://127.0.0.1:8090";

export default defineConfig({
  plugins: [react(), cleanOutDir(), precompress()],
  build: {
    outDir,
    emptyOutDir: false,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (id.includes("node_modules/react-dom") || id.includes("node_modules/react/") || id.includes("node_modules/scheduler")) return "react";
          if (id.includes("node_modules/@codemirror") || id.includes("node_modules/@lezer") || id.includes("node_modules/codemirror") || id.includes("node_modules/style-mod") || id.includes("node_modules/w3c-keyname") || id.includes("node_modules/crelt")) return "codemirror";
          return undefined;
        },
      },
    },
  },
  server: {
    port: 5173,
    proxy: { "/api": { target: apiTarget, changeOrigin: false }, "/openapi.json": apiTarget },
  },
  test: {
    environment: "jsdom",
    globals: false,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
