// Makes sure Deno and Bun (pinned in package.json, from the npm registry)
// are installed in node_modules; installs them when they are missing.
import { existsSync } from "node:fs";
import { execSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bins = ["deno", "bun"].map((b) => join(root, "node_modules", ".bin", b));
if (!bins.every((b) => existsSync(b))) {
  console.log("installing Deno and Bun from the npm registry (npm install)...");
  execSync("npm install --no-audit --no-fund", { cwd: root, stdio: "inherit" });
}
for (const bin of bins) {
  if (!existsSync(bin)) {
    console.error(`missing ${bin} after npm install`);
    process.exit(1);
  }
}
