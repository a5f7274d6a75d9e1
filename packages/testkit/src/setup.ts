import { afterAll } from "vitest";
import { removeTempDirs } from "./process.js";

// A setup file's hooks are registered before the test file's, and vitest runs after-hooks in reverse order
// (sequence.hooks "stack"): the file's own afterAll has stopped its components by the time their dirs go.
afterAll(removeTempDirs);
