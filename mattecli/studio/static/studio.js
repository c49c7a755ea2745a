// mattecli studio: the page. Plain JS and canvas, no framework, nothing fetched from the network.
"use strict";

const TOKEN = document.querySelector('meta[name="studio-token"]').content;
const $ = (id) => document.getElementById(id);
const source = $("source"), result = $("result");
const ui = {
  images: [], i: 0, data: null, picture: null, layers: {}, seq: 0, shown: 0,
  view: "cutout", backdrop: "checker",
};
// Click-to-updated-matte times in ms (read by the browser test and the benchmark).
window.studio = { latencies: [], updates: 0, saves: 0, lastSave: null, ui };

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, body) {
  const init = { headers: { "X-Studio-Token": TOKEN } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("could not load an image"));
    img.src = url;
  });
}

// --- drawing ---------------------------------------------------------------------------------
function checker(ctx, w, h) {
  const size = Math.max(8, Math.round(w / 48));
  for (let y = 0; y < h; y += size)
    for (let x = 0; x < w; x += size) {
      ctx.fillStyle = ((x / size + y / size) & 1) ? "#c8c8c8" : "#f4f4f4";
      ctx.fillRect(x, y, size, size);
    }
}

function drawSource() {
  if (!ui.picture || !ui.data) return;
  const ctx = source.getContext("2d");
  ctx.drawImage(ui.picture, 0, 0, source.width, source.height);
  const s = source.width / ui.data.width;
  const r = Math.max(4, source.width / 120);
  const strokes = ui.data.clicks.filter((c) => c.points).concat(ui.drag && ui.drag.painting ? [ui.drag] : []);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const st of strokes) {
    ctx.beginPath();
    st.points.forEach(([x, y], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, (x + 0.5) * s, (y + 0.5) * s));
    if (st.points.length === 1) ctx.lineTo((st.points[0][0] + 0.5) * s + 0.01, (st.points[0][1] + 0.5) * s);
    ctx.lineWidth = Math.max(2, 2 * st.radius * s);
    ctx.strokeStyle = st.label === "fg" ? "rgba(46, 204, 64, 0.55)" : "rgba(255, 65, 54, 0.55)";
    ctx.stroke();
  }
  for (const c of ui.data.clicks) {
    if (c.points) continue;
    ctx.beginPath();
    ctx.arc((c.x + 0.5) * s, (c.y + 0.5) * s, r, 0, 2 * Math.PI);
    ctx.fillStyle = c.label === "fg" ? "#2ecc40" : "#ff4136";
    ctx.fill();
    ctx.lineWidth = Math.max(1.5, r / 3);
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
}

function drawResult() {
  const ctx = result.getContext("2d");
  const w = result.width, h = result.height;
  const p = ui.data && ui.data.preview;
  ctx.clearRect(0, 0, w, h);
  if (!p || !p.alpha) {
    if (ui.picture) { ctx.globalAlpha = 0.25; ctx.drawImage(ui.picture, 0, 0, w, h); ctx.globalAlpha = 1; }
    $("result-caption").textContent = p && p.note ? p.note
      : "left-click the subject, right-click the background (or drag to paint over them)";
    return;
  }
  if (ui.view === "alpha") {
    ctx.drawImage(ui.layers.alpha, 0, 0, w, h);
  } else if (ui.view === "uncertainty" && ui.layers.uncertainty) {
    ctx.drawImage(ui.layers.uncertainty, 0, 0, w, h);
    const s = w / p.width;
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#00e5ff";
    for (const [x0, y0, x1, y1] of p.patches) ctx.strokeRect(x0 * s, y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  } else {
    if (ui.backdrop === "checker") checker(ctx, w, h);
    else { ctx.fillStyle = $("colour").value; ctx.fillRect(0, 0, w, h); }
    ctx.drawImage(ui.layers.cutout, 0, 0, w, h);
  }
  const extra = p.uncertainty ? `, ${p.patches.length} refined patches` : "";
  $("result-caption").textContent = `${ui.view} at ${p.width}x${p.height} (working resolution), ${p.compute_ms} ms on the server${extra}`;
}

function drawAll() { drawSource(); drawResult(); }

// --- state -----------------------------------------------------------------------------------
async function show(data, started) {
  if (ui.data && ui.data.i === data.i && data.revision < ui.data.revision) return;  // older than what is shown
  if (data.preview && data.preview.superseded) {
    // another click is already on its way: show the clicks now, keep the matte until its answer
    const keep = ui.data && ui.data.i === data.i ? ui.data.preview : null;
    ui.data = Object.assign({}, data, { preview: keep });
    drawSource();
    return;
  }
  const seq = ++ui.seq;
  const p = data.preview;
  const layers = {};
  if (p && p.alpha) {
    const names = ["alpha", "cutout"].concat(p.uncertainty ? ["uncertainty"] : []);
    const imgs = await Promise.all(names.map((n) => loadImage(p[n])));
    names.forEach((n, k) => { layers[n] = imgs[k]; });
  }
  if (seq !== ui.seq) return;  // a newer answer arrived meanwhile
  ui.data = data;
  ui.layers = layers;
  const unc = $("view-uncertainty").querySelector("input");
  unc.disabled = !(p && p.uncertainty);
  if (unc.disabled && ui.view === "uncertainty") { ui.view = "cutout"; document.querySelector('input[name=view][value=cutout]').checked = true; }
  $("undo").disabled = !data.can_undo;
  $("redo").disabled = !data.can_redo;
  $("save").disabled = data.clicks.length === 0;
  drawAll();
  ui.images[data.i].clicks = data.clicks.length;
  $("images").options[data.i].textContent = label(ui.images[data.i], data.i);
  if (started !== undefined) {
    window.studio.latencies.push(performance.now() - started);
  }
  window.studio.updates += 1;
  document.body.dataset.updates = String(window.studio.updates);
  status(`${data.name}: ${describe(data.clicks)}` + (p && p.note ? ` — ${p.note}` : ""), Boolean(p && p.note));
}

// What a person has marked, in words (the page never shows JSON keys).
function describe(marks) {
  if (!marks.length) return "nothing marked yet: left-click the subject, right-click the background";
  const count = (pred) => marks.filter(pred).length;
  const parts = [];
  const fg = count((c) => !c.points && c.label === "fg"), bg = count((c) => !c.points && c.label === "bg");
  const fgs = count((c) => c.points && c.label === "fg"), bgs = count((c) => c.points && c.label === "bg");
  const plural = (n, one) => `${n} ${one}${n === 1 ? "" : "s"}`;
  if (fg) parts.push(`${plural(fg, "click")} on the subject`);
  if (bg) parts.push(`${plural(bg, "click")} on the background`);
  if (fgs) parts.push(`${plural(fgs, "stroke")} over the subject`);
  if (bgs) parts.push(`${plural(bgs, "stroke")} over the background`);
  let hint = "";
  if (!fg && !fgs) hint = " — now left-click the subject";
  else if (!bg && !bgs) hint = " — right-click the background where the matte is wrong";
  return parts.join(", ") + hint;
}

function label(img, i) { return `${i + 1}. ${img.name}${img.clicks ? ` (${img.clicks})` : ""}`; }

async function open(i) {
  if (i < 0 || i >= ui.images.length) return;
  ui.i = i;
  $("images").value = String(i);
  $("prev").disabled = i === 0;
  $("next").disabled = i === ui.images.length - 1;
  status(`opening ${ui.images[i].name}…`);
  try {
    const [picture, data] = await Promise.all([loadImage(`/api/view?i=${i}&token=${TOKEN}`), api(`/api/image?i=${i}`)]);
    if (ui.i !== i) return;
    ui.picture = picture;
    for (const c of [source, result]) { c.width = picture.naturalWidth; c.height = picture.naturalHeight; }
    const brush = $("brush");
    brush.max = String(Math.max(10, Math.round(Math.max(data.width, data.height) / 10)));
    if (!brush.dataset.touched) brush.value = String(Math.max(2, Math.round(Math.max(data.width, data.height) / 100)));
    $("brush-value").textContent = brush.value;
    await show(data);
  } catch (e) { status(e.message, true); }
}

async function act(action, extra = {}, started) {
  try {
    const data = await api(`/api/${action}`, Object.assign({ i: ui.i }, extra));
    await show(data, started);
  } catch (e) { status(e.message, true); }
}

async function save() {
  status("saving at full resolution…");
  $("save").disabled = true;
  try {
    const r = await api("/api/save", { i: ui.i });
    window.studio.saves += 1;
    window.studio.lastSave = r;
    document.body.dataset.saves = String(window.studio.saves);
    status(`saved ${r.saved.join(", ")} in ${r.out}. To redo every saved image in batch: ${r.command}`);
  } catch (e) { status(e.message, true); }
  $("save").disabled = !(ui.data && ui.data.clicks.length);
}

function imageCoords(canvas, ev) {
  const rect = canvas.getBoundingClientRect();
  const w = ui.data.width, h = ui.data.height;
  const x = Math.min(Math.max(((ev.clientX - rect.left) / rect.width) * w - 0.5, 0), w - 1);
  const y = Math.min(Math.max(((ev.clientY - rect.top) / rect.height) * h - 0.5, 0), h - 1);
  return { x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
}

// A press that does not move is a click; a drag paints a stroke of the brush's radius (in image
// pixels), sent on release as one change (one undo step).
const DRAG_PIXELS = 4;  // screen pixels a press must move to become a stroke

function brushRadius() { return Number($("brush").value); }

for (const canvas of [source, result]) {
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  canvas.addEventListener("mousedown", (ev) => {
    if (!ui.data || ev.button === 1) return;
    ev.preventDefault();
    const positive = ev.button === 0 && !ev.shiftKey && !ev.altKey;
    ui.drag = { canvas, label: positive ? "fg" : "bg", x0: ev.clientX, y0: ev.clientY, painting: false,
                points: [], radius: brushRadius() };
    const p = imageCoords(canvas, ev);
    ui.drag.points.push([p.x, p.y]);
  });
}

window.addEventListener("mousemove", (ev) => {
  const d = ui.drag;
  if (!d) return;
  if (!d.painting && Math.hypot(ev.clientX - d.x0, ev.clientY - d.y0) < DRAG_PIXELS) return;
  d.painting = true;
  const p = imageCoords(d.canvas, ev);
  const [lx, ly] = d.points[d.points.length - 1];
  if (Math.hypot(p.x - lx, p.y - ly) >= Math.max(1, d.radius / 2)) d.points.push([p.x, p.y]);
  drawSource();
});

window.addEventListener("mouseup", (ev) => {
  const d = ui.drag;
  if (!d) return;
  ui.drag = null;
  const started = performance.now();
  if (d.painting) {
    const p = imageCoords(d.canvas, ev);
    const [lx, ly] = d.points[d.points.length - 1];
    if (p.x !== lx || p.y !== ly) d.points.push([p.x, p.y]);
    act("stroke", { points: d.points.slice(0, 2000), radius: d.radius, label: d.label }, started);
  } else {
    const [x, y] = d.points[0];
    act("click", { x, y, label: d.label }, started);
  }
});

$("undo").onclick = () => act("undo");
$("redo").onclick = () => act("redo");
$("clear").onclick = () => act("clear");
$("save").onclick = save;
$("prev").onclick = () => open(ui.i - 1);
$("next").onclick = () => open(ui.i + 1);
$("images").onchange = (ev) => open(Number(ev.target.value));
for (const r of document.querySelectorAll("input[name=view]")) r.onchange = (ev) => { ui.view = ev.target.value; drawResult(); };
for (const r of document.querySelectorAll("input[name=backdrop]")) r.onchange = (ev) => { ui.backdrop = ev.target.value; drawResult(); };
$("colour").oninput = () => { ui.backdrop = "colour"; document.querySelector("input[name=backdrop][value=colour]").checked = true; drawResult(); };
$("brush").oninput = () => { $("brush").dataset.touched = "1"; $("brush-value").textContent = $("brush").value; };
$("budget").oninput = () => { $("budget-value").textContent = $("budget").value; };
$("budget").onchange = () => act("budget", { value: Number($("budget").value) }, performance.now());

document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
  const k = ev.key.toLowerCase();
  if ((ev.ctrlKey || ev.metaKey) && k === "z") { ev.preventDefault(); act(ev.shiftKey ? "redo" : "undo"); }
  else if ((ev.ctrlKey || ev.metaKey) && k === "y") { ev.preventDefault(); act("redo"); }
  else if (k === "n") open(ui.i + 1);
  else if (k === "p") open(ui.i - 1);
  else if (k === "s" && !ev.ctrlKey && !ev.metaKey) save();
});

(async function start() {
  try {
    const state = await api("/api/state");
    ui.images = state.images;
    $("method").textContent = state.method;
    $("images").innerHTML = "";
    state.images.forEach((img, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = label(img, i);
      $("images").appendChild(o);
    });
    if (state.budget !== null) {
      $("budget-box").hidden = false;
      $("budget").max = String(Math.max(64, 2 * state.budget));
      $("budget").value = String(state.budget);
      $("budget-value").textContent = String(state.budget);
    }
    await open(0);
  } catch (e) { status(e.message, true); }
})();
