// Static checks: deno fmt --check, deno lint, deno check, deno doc --lint,
// deno publish --dry-run. Exits non-zero on the first failure.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const deno = join(root, "node_modules", ".bin", "deno");
const steps = [
  ["fmt", "--check"],
  ["lint"],
  ["check", "mod.ts", "tests/", "bench/", "demo/"],
  ["doc", "--lint", "mod.ts"],
  ["publish", "--dry-run", "--allow-dirty"],
];
for (const step of steps) {
  console.log(`$ deno ${step.join(" ")}`);
  try {
    execFileSync(deno, step, {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, NO_COLOR: "1" },
    });
  } catch {
    console.error(`deno ${step[0]} failed`);
    process.exit(1);
  }
}
console.log("static checks clean");
