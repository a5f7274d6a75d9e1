import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript sources under this condition, so tests run on the sources
// without a build. Vite applies resolve.conditions to the client environment only; tests run in the SSR one.
const conditions = ["aixcl-source"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    setupFiles: ["packages/testkit/src/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    server: { deps: { inline: [/@aixcl\//] } },
    // Run one project at a time (`vitest run --project <name>`; scripts/test.sh runs both, in this order).
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["**/test/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/dist/**", "test/docker/**"],
        },
      },
      {
        // The Docker tier drives the one `aixcl` compose project of this machine through ./aixcl: one file at a
        // time, minutes per step, and alone, never beside tests that load the CPU.
        extends: true,
        test: {
          name: "docker",
          include: ["test/docker/**/*.docker.test.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
