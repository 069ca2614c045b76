// Headless Chromium (Debian's `chromium`, driven by playwright-core) on the HTML report of `deepscan scan --format
// html`, checked against the JSON report of the same scan for what a person sees: the verdicts and numbers, the
// summary table, the timeline's axes with each frame's dot where its time and score fall, the shaded suspicious
// seconds, the people with their face crops decoded, the failed video's error; nothing fetched from anywhere.
//   node report_test.mjs REPORT_HTML REPORT_JSON SCREENSHOT_PNG
// Exit 0 on success, 1 on a failed check, 77 (CTest "skipped") when Chromium or playwright-core is missing.
import { existsSync, readFileSync } from "node:fs";
import { check, chromiumPath, playwright } from "./harness.mjs";
import { pathToFileURL } from "node:url";

const [htmlPath, jsonPath, screenshot] = process.argv.slice(2);
if (!htmlPath || !jsonPath || !screenshot) {
  console.error("usage: node report_test.mjs REPORT_HTML REPORT_JSON SCREENSHOT_PNG");
  process.exit(2);
}
const near = (a, b, tol = 1.0) => Math.abs(a - b) <= tol;
const score3 = (x) => x.toFixed(3);
const secs2 = (t) => `${t.toFixed(2)} s`;

const report = JSON.parse(readFileSync(jsonPath, "utf8"));
const browser = await playwright.chromium.launch({
  executablePath: chromiumPath,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  const fetched = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("request", (r) => fetched.push(r.url()));
  const url = pathToFileURL(htmlPath).href;
  await page.goto(url, { waitUntil: "load" });
  const others = fetched.filter((u) => u !== url && !u.startsWith("data:"));
  check(others.length === 0, `the report fetches nothing but itself (${others.join(", ")})`);
  check((await page.$$("script")).length === 0, "the report has no script");

  const videos = report.videos;
  check(videos.some((v) => v.status === "ok") && videos.some((v) => v.status === "error"),
        "the scan has a scored and a failed video");
  check((await page.title()) === `deepscan report: ${videos.length} videos`, `the title counts the videos`);
  // The summary table: one row per video, in order, with its verdict and score.
  const rows = await page.$$eval("table.summary tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
  check(rows.length === videos.length, `the summary has a row per video (${rows.length})`);
  const s = report.summary;
  const counts = await page.textContent("#summary .counts");
  check(counts === `${s.videos} videos: ${s.fake} look manipulated, ${s.real} look real, ${s.no_face} without a face, ` +
        `${s.errors} could not be scanned.`, `the summary counts match the JSON's: "${counts}"`);
  videos.forEach((v, i) => {
    const [n, path, verdict, score, people] = rows[i];
    check(n === String(i + 1) && path === v.path, `summary row ${i + 1} names "${v.path}" as given`);
    const want = v.status === "error" ? `Could not be scanned: ${v.error.code}` : v.status === "no_face" ?
        "No face found" : v.label === "fake" ? "looks manipulated" : "looks real";
    check(verdict === want, `summary row ${i + 1}: "${verdict}"`);
    check(score === (v.score === null ? "–" : score3(v.score)), `summary row ${i + 1} score ${score}`);
    check(people === String(v.identities.length), `summary row ${i + 1}: ${people} people`);
  });

  for (let i = 0; i < videos.length; ++i) {
    const v = videos[i];
    const section = `#video-${i + 1}`;
    check((await page.textContent(`${section} h2 .path`)) === v.path, `section ${i + 1} is headed by its path`);
    const verdict = await page.textContent(`${section} .verdict`);
    if (v.status === "error") {
      check(verdict === "Could not be scanned", `video ${i + 1}: "${verdict}"`);
      const message = await page.textContent(`${section} .error-message`);
      check(message === `${v.error.code} ${v.error.message}`, `the failure is shown as in the JSON: "${message}"`);
      continue;
    }
    const said = v.status === "no_face" ? "No face found" :
        `${v.label === "fake" ? "Looks manipulated" : "Looks real"} (score ${score3(v.score)})`;
    check(verdict === said, `video ${i + 1}: "${verdict}"`);
    const facts = Object.fromEntries(await page.$$eval(`${section} table.facts tr`, (trs) =>
      trs.map((tr) => [tr.dataset.field, tr.querySelector("td").textContent])));
    check(facts.size === `${v.video.width} × ${v.video.height} px`, `size: ${facts.size}`);
    check(facts.duration === secs2(v.video.duration_s), `duration: ${facts.duration}`);
    check(facts.fps === `${v.video.fps} fps`, `frame rate: ${facts.fps}`);
    check(facts.frame_count === String(v.video.frame_count), `frames: ${facts.frame_count}`);
    check(facts.codec === v.video.codec, `codec: ${facts.codec}`);
    check(facts.frames.startsWith(`${v.frames.length} (`), `sampled frames: ${facts.frames}`);
    check(facts.threshold.startsWith(score3(v.threshold)), `threshold: ${facts.threshold}`);

    // The timeline as drawn: the axes' ticks give seconds -> px and score -> px; every dot must sit where its
    // frame's time and score fall on them.
    const plot = await page.$eval(`${section} svg.timeline`, (svg) => {
      const mid = (e) => { const b = e.getBoundingClientRect(); return [(b.left + b.right) / 2, (b.top + b.bottom) / 2]; };
      const ticks = (cls) => [...svg.querySelectorAll(`g.${cls}`)].map((g) =>
        ({ value: Number(g.querySelector("text").textContent), at: mid(g.querySelector("line")) }));
      const line = svg.querySelector("line.threshold").getBoundingClientRect();
      return {
        xticks: ticks("xtick"),
        yticks: ticks("ytick"),
        dots: [...svg.querySelectorAll("circle.frame-dot")].map(mid),
        segments: [...svg.querySelectorAll("rect.segment")].map((r) => {
          const b = r.getBoundingClientRect();
          return [b.left, b.right];
        }),
        threshold: (line.top + line.bottom) / 2,
        label: svg.querySelector("text.threshold-label").textContent,
        axes: [...svg.querySelectorAll("text.axis-label")].map((t) => t.textContent),
      };
    });
    check(plot.axes.includes("time (s)") && plot.axes.includes("score"), `the axes are named (${plot.axes})`);
    const xt = plot.xticks;
    check(xt.length >= 4, `the time axis has ticks (${xt.map((t) => t.value).join(" ")})`);
    check(xt[0].value <= v.video.start_s + 1e-9 && xt[xt.length - 1].value >= v.video.start_s + v.video.duration_s -
          (xt[1].value - xt[0].value), `the ticks span the video (${xt[0].value}..${xt[xt.length - 1].value} s)`);
    const px = (t) => xt[0].at[0] + (t - xt[0].value) / (xt[xt.length - 1].value - xt[0].value) *
        (xt[xt.length - 1].at[0] - xt[0].at[0]);
    const yt = plot.yticks;
    check(yt.length === 5 && yt[0].value === 0 && yt[4].value === 1, `the score axis runs 0..1`);
    const py = (s) => yt[0].at[1] + s * (yt[4].at[1] - yt[0].at[1]);
    const scored = v.frames.filter((f) => f.score !== null);
    check(plot.dots.length === scored.length, `one dot per scored frame (${plot.dots.length} of ${scored.length})`);
    let worst = 0;
    scored.forEach((f, k) => {
      const [x, y] = plot.dots[k];
      worst = Math.max(worst, Math.abs(x - px(f.timestamp_s)), Math.abs(y - py(f.score)));
      if (!near(x, px(f.timestamp_s)) || !near(y, py(f.score))) {
        check(false, `dot ${k} at (${x}, ${y}) px, not at ${f.timestamp_s} s / ${f.score}`);
      }
    });
    check(true, `every dot sits at its frame's time and score on the axes (worst ${worst.toFixed(2)} px)`);
    check(plot.dots[plot.dots.length - 1][0] - plot.dots[0][0] > 0.8 * (px(scored[scored.length - 1].timestamp_s) -
          px(scored[0].timestamp_s)) && plot.dots[plot.dots.length - 1][0] > plot.dots[0][0] + 100,
          "the dots spread over the time axis");
    check(near(plot.threshold, py(v.threshold)), `the threshold line is at ${v.threshold}`);
    check(plot.label === `threshold ${score3(v.threshold)}`, `it is labelled "${plot.label}"`);
    check(plot.segments.length === v.segments.length, `one shaded stretch per suspicious segment (${v.segments.length})`);
    v.segments.forEach((g, k) => {
      const [left, right] = plot.segments[k];
      check(near(left, px(g.start_s)) && near(right, px(g.end_s)), `shaded ${g.start_s}–${g.end_s} s`);
    });
    const spans = v.segments.map((g) => `${g.start_s.toFixed(2)}–${g.end_s.toFixed(2)} s`).join(", ");
    const suspicious = await page.textContent(`${section} .suspicious`);
    check(suspicious === (spans ? `Suspicious seconds: ${spans}.` : "No stretch of frames at or above the threshold."),
          `"${suspicious}"`);

    // People: one row each, in the JSON's order, with the JSON's numbers and their face crops, decoded.
    const people = await page.$$eval(`${section} table.people tbody tr`, (trs) => trs.map((tr) => ({
      track: tr.dataset.track,
      cells: [...tr.querySelectorAll("td")].map((td) => td.textContent),
      images: [...tr.querySelectorAll("img.face")].map((img) => ({ ok: img.complete, w: img.naturalWidth, h: img.naturalHeight })),
    })));
    check(people.length === v.identities.length, `one row per person (${people.length})`);
    let images = 0;
    v.identities.forEach((p, k) => {
      const row = people[k];
      check(row.track === String(p.track_id) && row.cells[0] === `#${p.track_id}` &&
            row.cells[2] === score3(p.score) && row.cells[3] === `${p.first_s.toFixed(2)}–${p.last_s.toFixed(2)} s` &&
            row.cells[4] === String(p.faces), `person #${p.track_id}: ${row.cells.slice(0, 5).join(" | ")}`);
      check(row.images.length >= 1 && row.images.length <= 3, `person #${p.track_id} shows ${row.images.length} crops`);
      for (const img of row.images) {
        check(img.ok && img.w > 0 && img.h > 0, `a crop of person #${p.track_id} decoded (${img.w}×${img.h})`);
      }
      images += row.images.length;
    });
    check(images > 0, `${images} face crops in the report`);
  }

  // The model and its card's limits; the options used.
  const model = await page.textContent("#model");
  check(model.includes(report.model.name) && model.includes(report.model.threshold.toFixed(4)),
        "the model is named with its threshold");
  const limits = await page.$$eval("#model ul.limits li", (lis) => lis.map((li) => li.textContent));
  check(limits.length >= 3 && limits[0].startsWith("Weak on real face-swaps."),
        `the card's known limits are listed (${limits.length})`);
  const options = Object.fromEntries(await page.$$eval("#options tr", (trs) =>
    trs.map((tr) => [tr.querySelector("th").textContent, tr.querySelector("td").textContent])));
  check(options["frame selection (--sampling)"] === report.options.sampling &&
        options["frames per video (--frames)"] === String(report.options.frames),
        "the options used match the JSON's");
  await page.screenshot({ path: screenshot, fullPage: true });
  check(existsSync(screenshot), `screenshot kept: ${screenshot}`);
  check(errors.length === 0, `no error in the page (${errors.join("; ")})`);
} finally {
  await browser.close();
}
