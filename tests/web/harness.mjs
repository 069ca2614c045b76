// What the headless-Chromium tests share: Debian's chromium and playwright-core found (exit 77, CTest
// "skipped", when either is missing) and `check`, which logs a check and fails the test on a false one.
import { existsSync } from "node:fs";

export const chromiumPath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
export let playwright;
try {
  playwright = await import("playwright-core");
} catch (e) {
  console.log(`skip: playwright-core is not installed (npm ci in tests/web): ${e.message}`);
  process.exit(77);
}
if (!chromiumPath) {
  console.log("skip: no chromium (apt install chromium)");
  process.exit(77);
}

export function check(ok, what) {
  if (!ok) {
    console.error(`FAIL: ${what}`);
    process.exitCode = 1;
    throw new Error(what);
  }
  console.log(`ok: ${what}`);
}
