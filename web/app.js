// deepscan web page: upload a video to POST /v1/scan (as a job), poll GET /v1/jobs/{id}, draw the verdict.
// No framework and no build step: served as is by `deepscan serve` (web/).
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("deepscan-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("deepscan-key", keyInput.value));

function headers() {
  const h = {};
  if (keyInput.value) h["X-API-Key"] = keyInput.value;
  return h;
}

function fail(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").hidden = true;
}

function errorText(body, status) {
  if (body && body.error) return `${body.error.code}: ${body.error.message}`;
  return `HTTP ${status}`;
}

// Upload with progress (fetch has no upload progress): resolves with {status, body}.
function upload(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/scan?wait=false");
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) $("progress").value = e.loaded / e.total;
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      resolve({status: xhr.status, body});
    };
    xhr.onerror = () => reject(new Error("the upload failed (network)"));
    xhr.send(file);
  });
}

async function poll(location) {
  for (;;) {
    const r = await fetch(location, {headers: headers()});
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error(errorText(body, r.status));
    if (body.status === "done") return body.result;
    if (body.status === "failed") throw new Error(errorText(body, r.status));
    $("status-text").textContent = body.status === "queued" ? "Waiting for a free scanner…" : "Scanning…";
    $("progress").value = body.progress || 0;
    await new Promise((ok) => setTimeout(ok, 300));
  }
}

// The job whose report is shown, for the HTML report's download: {location, name}; null when the answer came inline.
let shownJob = null;

async function scan(file) {
  shownJob = null;
  $("error").hidden = true;
  $("result").hidden = true;
  $("status").hidden = false;
  $("status-text").textContent = `Uploading ${file.name}…`;
  $("progress").value = 0;
  try {
    const up = await upload(file);
    let verdict;
    if (up.status === 200) {
      verdict = up.body;
    } else if (up.status === 202) {
      $("status-text").textContent = "Scanning…";
      $("progress").value = 0;
      verdict = await poll(up.body.location);
      shownJob = {location: up.body.location, name: file.name};
    } else {
      throw new Error(errorText(up.body, up.status));
    }
    render(verdict);
  } catch (e) {
    fail(e.message);
  }
}

function fmt(x) { return x === null || x === undefined ? "–" : x.toFixed(3); }
function secs(t) { return `${t.toFixed(1)} s`; }
function span(seg) { return `${seg.start_s.toFixed(1)}–${seg.end_s.toFixed(1)} s`; }

// `report` is what `deepscan scan --format json` prints for one video: {model, videos: [verdict], ...}.
function render(report) {
  const v = report.videos ? report.videos[0] : report;
  v.model = report.model || v.model;
  $("status").hidden = true;
  $("result").hidden = false;
  const verdict = $("verdict");
  if (v.status === "no_face") {
    verdict.textContent = "No face found";
    verdict.className = "";
  } else {
    verdict.textContent = `${v.label === "fake" ? "Looks manipulated" : "Looks real"} (score ${fmt(v.score)})`;
    verdict.className = v.label;
  }
  const info = v.video;  // docs/output.md: what the container says (zeros when unknown)
  const size = info.width ? `${info.width}×${info.height}` : "size unknown";
  const length = info.duration_s ? secs(info.duration_s) : "duration unknown";
  $("summary").textContent = `${size}, ${length}; ${v.frames.length} frames examined; threshold ${fmt(v.threshold)}.`;
  $("suspicious").textContent = v.segments.length ?
      `Suspicious seconds: ${v.segments.map(span).join(", ")}.` :
      "No stretch of frames at or above the threshold.";
  $("download-row").hidden = shownJob === null;
  drawTimeline(v);
  const people = $("people").querySelector("tbody");
  people.replaceChildren();
  for (const p of v.identities || []) {
    const tr = document.createElement("tr");
    for (const text of [`#${p.track_id}`, p.label || "–", fmt(p.score), String(p.faces),
                        `${secs(p.first_s)} – ${secs(p.last_s)}`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    people.appendChild(tr);
  }
  const frames = $("frames").querySelector("tbody");
  frames.replaceChildren();
  for (const top of v.top_frames || []) {  // {frame: position in frames, face, score, timestamp_s}
    const f = v.frames[top.frame];
    const tr = document.createElement("tr");
    for (const text of [secs(top.timestamp_s), fmt(top.score), String(f ? f.faces.length : 0)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    frames.appendChild(tr);
  }
  const m = v.model || {};
  $("model").textContent = m.name ? `model ${m.name} ${m.version} on ${m.device || "cpu"}` : "";
}

function drawTimeline(v) {
  const svg = $("timeline");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  // x: the video's time from its first frame (video.start_s) to its end (start_s + duration_s); when the container
  // gives no duration, to the last sampled frame.
  const start = v.video.start_s;
  const last = v.frames.length ? v.frames[v.frames.length - 1].timestamp_s : start;
  const end = Math.max(v.video.duration_s > 0 ? start + v.video.duration_s : last, last, start + 1e-3);
  const x = (t) => ((t - start) / (end - start)) * 800;
  const y = (s) => 150 - s * 140;
  for (const seg of v.segments || []) {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", x(seg.start_s));
    r.setAttribute("width", Math.max(2, x(seg.end_s) - x(seg.start_s)));
    r.setAttribute("y", 0);
    r.setAttribute("height", 160);
    r.setAttribute("fill", "#ffd8d3");
    svg.appendChild(r);
  }
  const line = document.createElementNS(ns, "line");
  line.setAttribute("x1", 0);
  line.setAttribute("x2", 800);
  line.setAttribute("y1", y(v.threshold));
  line.setAttribute("y2", y(v.threshold));
  line.setAttribute("stroke", "#cf222e");
  line.setAttribute("stroke-dasharray", "4 4");
  svg.appendChild(line);
  for (const f of v.frames) {
    if (f.score === null || f.score === undefined) continue;
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x(f.timestamp_s));
    c.setAttribute("cy", y(f.score));
    c.setAttribute("r", 4);
    c.setAttribute("fill", f.score >= v.threshold ? "#cf222e" : "#3b6fd8");
    c.setAttribute("class", "frame-dot");
    svg.appendChild(c);
  }
}

// The HTML report of the job shown (GET /v1/jobs/{id}?format=html), saved as a file. A plain link cannot send the
// API key, so it is fetched and handed to the browser as a blob.
$("download").addEventListener("click", async () => {
  if (!shownJob) return;
  const button = $("download");
  button.disabled = true;
  try {
    const r = await fetch(`${shownJob.location}?format=html`, {headers: headers()});
    if (!r.ok) throw new Error(errorText(await r.json().catch(() => null), r.status));
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = `${shownJob.name.replace(/\.[^.]*$/, "")}.deepscan.html`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    fail(`the HTML report could not be fetched: ${e.message}`);
  } finally {
    button.disabled = false;
  }
});

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) scan(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => { if (e.target.files.length) scan(e.target.files[0]); });

// ---- Live: frames of a playing video (or the camera) scored over WS /v1/stream (docs/serve.md, "Live streams").
// Each frame goes as one binary message: an 8-byte little-endian float64 timestamp, then a JPEG. The page sends a
// frame only when fewer than two are unanswered, so it never outruns the server by much; the server drops what it
// cannot score anyway and says how many.
const live = {ws: null, loop: 0, sent: 0, answered: 0, dropped: 0, latency: 0, pending: 0, t0: 0, camera: null};
const liveVideo = $("live-video");
const grab = document.createElement("canvas");

function liveStats(extra) {
  const l = live;
  $("live-stats").textContent =
    `frames sent ${l.sent}, answered ${l.answered}, dropped by the server ${l.dropped}` +
    (l.answered ? `, server latency ${l.latency.toFixed(0)} ms` : "") + (extra ? ` — ${extra}` : "");
}

function stopLive(why) {
  if (live.ws) {
    const ws = live.ws;
    live.ws = null;
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "end"}));
  }
  if (live.camera) live.camera.getTracks().forEach((t) => t.stop());
  live.camera = null;
  liveVideo.pause();
  $("live-stop").disabled = true;
  liveStats(why);
}

function drawBoxes(message) {
  const c = $("live-boxes");
  c.width = grab.width;
  c.height = grab.height;
  const g = c.getContext("2d");
  g.lineWidth = Math.max(2, c.width / 300);
  g.font = `${Math.max(12, c.width / 50)}px system-ui, sans-serif`;
  for (const f of message.faces) {
    const [x, y, w, h] = f.box;
    g.strokeStyle = g.fillStyle = f.label === "fake" ? "#cf222e" : "#1a7f37";
    g.strokeRect(x, y, w, h);
    g.fillText(`#${f.track_id} ${f.score.toFixed(2)}`, x, Math.max(12, y - 4));
  }
}

function livePeople(identities) {
  const tbody = document.querySelector("#live-people tbody");
  tbody.textContent = "";
  for (const p of identities) {
    const tr = document.createElement("tr");
    for (const text of [`#${p.track_id}`, p.label === "fake" ? "looks manipulated" : "looks real", p.score.toFixed(3),
                        p.recent.toFixed(3), p.faces, `${p.first_s.toFixed(1)}–${p.last_s.toFixed(1)} s`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
  $("live-people").hidden = identities.length === 0;
}

function sendFrame() {
  if (!live.ws || live.ws.readyState !== WebSocket.OPEN || live.pending >= 2) return;
  if (!liveVideo.videoWidth || liveVideo.paused || liveVideo.ended) return;
  const scale = Math.min(1, 1280 / Math.max(liveVideo.videoWidth, liveVideo.videoHeight));
  grab.width = Math.round(liveVideo.videoWidth * scale);
  grab.height = Math.round(liveVideo.videoHeight * scale);
  grab.getContext("2d").drawImage(liveVideo, 0, 0, grab.width, grab.height);
  const t = live.camera ? performance.now() / 1000 - live.t0 : liveVideo.currentTime;
  live.pending++;
  grab.toBlob(async (blob) => {
    const ws = live.ws;
    if (!blob || !ws || ws.readyState !== WebSocket.OPEN) {
      live.pending--;
      return;
    }
    const jpeg = new Uint8Array(await blob.arrayBuffer());
    const message = new Uint8Array(8 + jpeg.length);
    new DataView(message.buffer).setFloat64(0, t, true);
    message.set(jpeg, 8);
    ws.send(message);
    live.sent++;
  }, "image/jpeg", 0.85);
}

function frameLoop() {
  sendFrame();
  if (!live.ws) return;
  if (liveVideo.requestVideoFrameCallback) liveVideo.requestVideoFrameCallback(frameLoop);
  else setTimeout(frameLoop, 33);
}

function startLive(setSource) {
  stopLive();
  Object.assign(live, {sent: 0, answered: 0, dropped: 0, latency: 0, pending: 0});
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const key = keyInput.value ? `?api_key=${encodeURIComponent(keyInput.value)}` : "";
  const ws = new WebSocket(`${proto}//${location.host}/v1/stream${key}`);
  live.ws = ws;
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (live.ws !== ws) {  // stopped: answers still on their way change nothing but the people's last verdicts
      if (m.type === "summary") livePeople(m.identities);
      return;
    }
    if (m.type === "frame") {
      live.pending = Math.max(0, live.pending - 1);
      live.answered++;
      live.dropped = m.dropped;
      live.latency = m.latency_ms;
      drawBoxes(m);
      livePeople(m.identities);
      liveStats();
    } else if (m.type === "error") {
      if (m.seq !== null) live.pending = Math.max(0, live.pending - 1);
      liveStats(`${m.error.code}: ${m.error.message}`);
    } else if (m.type === "summary") {
      livePeople(m.identities);
    }
  };
  ws.onclose = (e) => {
    if (live.ws === ws) stopLive(e.code === 1000 ? "stream ended" : `stream closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
  };
  ws.onopen = async () => {
    try {
      await setSource();
      document.querySelector(".stage").hidden = false;
      $("live-stop").disabled = false;
      live.t0 = performance.now() / 1000;
      await liveVideo.play();
      frameLoop();
      liveStats();
    } catch (err) {
      stopLive(err.message);
    }
  };
  liveStats("connecting…");
}

$("live-file").addEventListener("change", () => {
  const file = $("live-file").files[0];
  if (!file) return;
  startLive(async () => {
    liveVideo.srcObject = null;
    liveVideo.src = URL.createObjectURL(file);
    liveVideo.onended = () => stopLive("the video ended");
  });
});
$("live-camera").addEventListener("click", () => {
  startLive(async () => {
    live.camera = await navigator.mediaDevices.getUserMedia({video: true});
    liveVideo.src = "";
    liveVideo.srcObject = live.camera;
  });
});
$("live-stop").addEventListener("click", () => stopLive("stopped"));
