import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript sources under this condition, so tests run on the sources
// without a build. Vite applies resolve.conditions to the client environment only; tests run in the SSR one.
const conditions = ["aixcl-source"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ["**/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    setupFiles: ["packages/testkit/src/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    server: { deps: { inline: [/@aixcl\//] } },
  },
});
