import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Workspace packages export their TypeScript sources under this condition, so tests run without a build.
    conditions: ["aixcl-source"],
  },
  test: {
    include: ["**/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Real sockets and real Loki processes: files run in parallel, tests inside a file in order.
    fileParallelism: true,
  },
});
