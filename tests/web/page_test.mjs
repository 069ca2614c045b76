// Headless Chromium (Debian's `chromium`, driven by playwright-core) against a running `deepscan serve`:
// the page loads, a video picked in it is uploaded, scanned as a job and its verdict drawn.
//   node page_test.mjs BASE_URL VIDEO [API_KEY]
// Exit 0 on success, 1 on a failed check, 77 (CTest "skipped") when Chromium or playwright-core is missing.
import { existsSync } from "node:fs";

const [base, video, key] = process.argv.slice(2);
if (!base || !video) {
  console.error("usage: node page_test.mjs BASE_URL VIDEO [API_KEY]");
  process.exit(2);
}
const chromiumPath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
let playwright;
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

function check(ok, what) {
  if (!ok) {
    console.error(`FAIL: ${what}`);
    process.exitCode = 1;
    throw new Error(what);
  }
  console.log(`ok: ${what}`);
}

const browser = await playwright.chromium.launch({
  executablePath: chromiumPath,
  // A fake camera (a synthetic picture, no face) for the live section's camera button.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--use-fake-device-for-media-stream",
         "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const response = await page.goto(base + "/", { waitUntil: "load" });
  check(response && response.status() === 200, "GET / answers 200");
  check((await page.title()) === "deepscan", "the page is deepscan's");
  if (key) await page.fill("#key", key);
  await page.setInputFiles("#file", video);
  // Upload, job, polling, then the verdict.
  await page.waitForSelector("#result:not([hidden]), #error:not([hidden])", { timeout: 120000 });
  const error = await page.$eval("#error", (e) => (e.hidden ? "" : e.textContent));
  check(error === "", `no error shown (${error})`);
  const verdict = await page.textContent("#verdict");
  check(/Looks (real|manipulated) \(score 0\.\d{3}\)|No face found/.test(verdict), `a verdict is shown: "${verdict}"`);
  const dots = await page.$$eval("#timeline circle.frame-dot", (c) => c.length);
  check(dots > 0, `the timeline has a dot per scored frame (${dots})`);
  const people = await page.$$eval("#people tbody tr", (r) => r.length);
  check(people > 0, `people are listed (${people})`);
  const frames = await page.$$eval("#frames tbody tr", (r) => r.length);
  check(frames > 0, `the most suspicious frames are listed (${frames})`);

  // Live: the same video played in the page, its frames sent over WS /v1/stream and answered as it plays.
  await page.setInputFiles("#live-file", video);
  await page.waitForFunction(() => {
    const m = /answered (\d+)/.exec(document.getElementById("live-stats").textContent);
    return m && Number(m[1]) >= 10;
  }, null, { timeout: 60000 });
  const stats = await page.textContent("#live-stats");
  check(/frames sent \d+, answered \d+, dropped by the server \d+, server latency \d+ ms/.test(stats),
        `live frames are answered: "${stats}"`);
  const livePeople = await page.$$eval("#live-people tbody tr", (r) => r.length);
  check(livePeople > 0, `live people are listed with running verdicts (${livePeople})`);
  const boxes = await page.$eval("#live-boxes", (c) => c.width > 0 && c.height > 0);
  check(boxes, "face boxes are drawn over the video");
  await page.click("#live-stop");
  await page.waitForFunction(() => /stopped/.test(document.getElementById("live-stats").textContent));
  // The camera (Chromium's fake one shows no face): frames still go out and come back.
  await page.click("#live-camera");
  await page.waitForFunction(() => {
    const m = /answered (\d+)/.exec(document.getElementById("live-stats").textContent);
    return m && Number(m[1]) >= 5;
  }, null, { timeout: 60000 });
  check(true, `camera frames are answered: "${await page.textContent("#live-stats")}"`);
  await page.click("#live-stop");
  check(errors.length === 0, `no script error (${errors.join("; ")})`);
} finally {
  await browser.close();
}
