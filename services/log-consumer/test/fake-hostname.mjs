// Preloaded (node --import) into a consumer process to simulate another host on a shared spool directory:
// os.hostname() answers TEST_FAKE_HOSTNAME. syncBuiltinESMExports makes `import { hostname } from "node:os"` see it.
import os from "node:os";
import { syncBuiltinESMExports } from "node:module";

const name = process.env.TEST_FAKE_HOSTNAME;
if (name) {
  os.hostname = () => name;
  syncBuiltinESMExports();
}
