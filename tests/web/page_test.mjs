// Headless Chromium (Debian's `chromium`, driven by playwright-core) against a running `deepscan serve`:
// the page loads, a video picked in it is uploaded, scanned as a job and its verdict drawn; what a person reads (the
// size and duration, the dots' and shaded stretches' positions on the timeline, the suspicious seconds) is compared
// with the job's JSON, and the HTML report it offers is downloaded and checked for the verdict.
//   node page_test.mjs BASE_URL VIDEO [API_KEY]
// Exit 0 on success, 1 on a failed check, 77 (CTest "skipped") when Chromium or playwright-core is missing.
import { readFileSync } from "node:fs";
import { check, chromiumPath, playwright } from "./harness.mjs";

const [base, video, key] = process.argv.slice(2);
if (!base || !video) {
  console.error("usage: node page_test.mjs BASE_URL VIDEO [API_KEY]");
  process.exit(2);
}

const browser = await playwright.chromium.launch({
  executablePath: chromiumPath,
  // A fake camera (a synthetic picture, no face) for the live section's camera button.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--use-fake-device-for-media-stream",
         "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ acceptDownloads: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const response = await page.goto(base + "/", { waitUntil: "load" });
  check(response && response.status() === 200, "GET / answers 200");
  check((await page.title()) === "deepscan", "the page is deepscan's");
  if (key) await page.fill("#key", key);
  // The job's JSON as the page received it (its last poll), to compare what a person reads with it.
  let job = null;
  page.on("response", async (r) => {
    if (!/\/v1\/jobs\/[0-9a-f]{32}$/.test(new URL(r.url()).pathname) || r.status() !== 200) return;
    const body = await r.json().catch(() => null);
    if (body && body.status === "done") job = body;
  });
  await page.setInputFiles("#file", video);
  // Upload, job, polling, then the verdict.
  await page.waitForSelector("#result:not([hidden]), #error:not([hidden])", { timeout: 120000 });
  const error = await page.$eval("#error", (e) => (e.hidden ? "" : e.textContent));
  check(error === "", `no error shown (${error})`);
  const verdict = await page.textContent("#verdict");
  check(/Looks (real|manipulated) \(score 0\.\d{3}\)|No face found/.test(verdict), `a verdict is shown: "${verdict}"`);
  const dots = await page.$$eval("#timeline circle.frame-dot", (c) => c.length);
  check(dots > 0, `the timeline has a dot per scored frame (${dots})`);
  check(job !== null, "the page polled its job until done");
  const v = job.result.videos[0];
  const summary = await page.textContent("#summary");
  check(summary.startsWith(`${v.video.width}×${v.video.height}, ${v.video.duration_s.toFixed(1)} s; ${v.frames.length} frames`),
        `the summary reads the video's size and duration from the report: "${summary}"`);
  const scored = v.frames.filter((f) => f.score !== null);
  check(dots === scored.length, `one dot per scored frame (${dots} of ${scored.length})`);
  // Positions as a person sees them: the timeline spans video.start_s .. start_s + duration_s, left to right.
  const plot = await page.$eval("#timeline", (svg) => {
    const box = svg.getBoundingClientRect();
    const centre = (e) => { const b = e.getBoundingClientRect(); return (b.left + b.right) / 2 - box.left; };
    return {
      width: box.width,
      dots: [...svg.querySelectorAll("circle.frame-dot")].map(centre),
      shaded: [...svg.querySelectorAll("rect")].map((e) => {
        const b = e.getBoundingClientRect();
        return [b.left - box.left, b.right - box.left];
      }),
    };
  });
  const start = v.video.start_s;
  const end = start + v.video.duration_s;
  const at = (t) => ((t - start) / (end - start)) * plot.width;
  for (const [name, i] of [["first", 0], ["last", scored.length - 1]]) {
    const want = at(scored[i].timestamp_s);
    check(Math.abs(plot.dots[i] - want) < 1.5,
          `the ${name} dot is at ${plot.dots[i].toFixed(1)} px of ${plot.width.toFixed(0)}, ` +
          `where ${scored[i].timestamp_s} s falls (${want.toFixed(1)} px)`);
  }
  check(plot.dots[scored.length - 1] - plot.dots[0] > 0.5 * plot.width, "the dots spread over the timeline");
  check(plot.shaded.length === v.segments.length, `one shaded stretch per suspicious segment (${v.segments.length})`);
  v.segments.forEach((seg, i) => {
    const [left, right] = plot.shaded[i];
    check(Math.abs(left - at(seg.start_s)) < 1.5 && Math.abs(right - at(seg.end_s)) < 1.5,
          `shaded ${left.toFixed(1)}–${right.toFixed(1)} px = ${seg.start_s}–${seg.end_s} s`);
  });
  const suspicious = await page.textContent("#suspicious");
  const spans = v.segments.map((g) => `${g.start_s.toFixed(1)}–${g.end_s.toFixed(1)} s`).join(", ");
  check(v.segments.length ? suspicious.includes(spans) : /No stretch/.test(suspicious),
        `the suspicious seconds are named: "${suspicious}"`);

  // The HTML report of the same job, downloaded as a file.
  check(await page.isVisible("#download"), "the page offers the HTML report");
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30000 }), page.click("#download")]);
  const saved = await download.path();
  const html = readFileSync(saved, "utf8");
  check(/\.html$/.test(download.suggestedFilename()), `the download is an HTML file (${download.suggestedFilename()})`);
  check(html.startsWith("<!doctype html>"), "the download is an HTML document");
  const said = v.status === "no_face" ? "No face found" :
      `${v.label === "fake" ? "Looks manipulated" : "Looks real"} (score ${v.score.toFixed(3)})`;
  check(html.includes(said), `the HTML report holds the verdict "${said}"`);
  check(verdict.includes(said), `the page says the same: "${verdict}"`);

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
