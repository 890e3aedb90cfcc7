// The page: settings, the editor, runs and the gallery wired together; keyboard shortcuts,
// drag-and-drop and paste of images, dark and light themes.
import { Editor } from "./editor.js";
import { Runs, api } from "./runs.js";

const $ = (id) => document.getElementById(id);
let config = null;
let parent = null; // the result being edited again, if any

function fail(message) { $("error").textContent = message || ""; }

const editor = new Editor({
  viewport: $("viewport"), stage: $("stage"), photo: $("photo"), mask: $("mask"),
  cursor: $("cursor"),
  onChange: (what) => {
    if (what === "view") $("zoom").textContent = `${Math.round(editor.view.scale * 100)}%`;
    $("undo").disabled = !editor.canUndo;
    $("redo").disabled = !editor.canRedo;
  },
});
const runs = new Runs({
  fail,
  onInput: (url, label) => loadURL(url, () => {
    parent = label;
    $("viewport").scrollIntoView({ block: "nearest" });
    $("status").textContent = `Editing result ${label}: paint what to fill next.`;
  }),
});

// ---- images in: file, example, drop, paste, a result
function show(img) {
  editor.setImage(img);
  parent = null;
  $("status").textContent = `Image ${editor.photo.width}x${editor.photo.height}: paint the area to fill.`;
  fail("");
}
function loadURL(url, then) {
  const img = new Image();
  img.onload = () => { show(img); then?.(); };
  img.onerror = () => fail("That file is not an image the browser can show.");
  img.src = url;
}
const loadFile = (file) => file && loadURL(URL.createObjectURL(file));
$("image-file").onchange = (e) => loadFile(e.target.files[0]);
$("example").onclick = () => { // a synthetic example: a ring on black
  const c = document.createElement("canvas"); c.width = c.height = 32;
  const g = c.getContext("2d");
  g.fillStyle = "black"; g.fillRect(0, 0, 32, 32);
  g.strokeStyle = "white"; g.lineWidth = 3; g.beginPath(); g.arc(16, 16, 9, 0, 7); g.stroke();
  loadURL(c.toDataURL());
};
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  const file = [...(e.dataTransfer?.files || [])].find((f) => f.type.startsWith("image/"));
  file ? loadFile(file) : fail("Drop an image file.");
});
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
  if (item) loadFile(item.getAsFile());
});
$("mask-file").onchange = (e) => {
  const file = e.target.files[0];
  if (!file || !editor.loaded) return fail("Open an image first, then its mask.");
  const img = new Image();
  img.onload = () => editor.loadMask(img);
  img.src = URL.createObjectURL(file);
};

// ---- tools and view
function setTool(tool) {
  editor.tool = tool;
  $("paint").setAttribute("aria-pressed", tool === "brush");
  $("erase").setAttribute("aria-pressed", tool === "erase");
}
$("paint").onclick = () => setTool("brush");
$("erase").onclick = () => setTool("erase");
$("brush").oninput = () => { editor.size = Number($("brush").value); };
$("opacity").oninput = () => { editor.mask.style.opacity = Number($("opacity").value) / 100; };
$("undo").onclick = () => editor.undo();
$("redo").onclick = () => editor.redo();
$("invert").onclick = () => editor.invert();
$("clear").onclick = () => editor.clear();
$("zoom-in").onclick = () => editor.zoomCentre(1.25);
$("zoom-out").onclick = () => editor.zoomCentre(0.8);
$("fit").onclick = () => editor.fit();
$("actual").onclick = () => editor.actual();
window.addEventListener("resize", () => editor.fit());

function brushBy(delta) {
  const input = $("brush");
  input.value = Math.min(Math.max(Number(input.value) + delta, Number(input.min)), Number(input.max));
  input.dispatchEvent(new Event("input"));
}
document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea")) return;
  const ctrl = e.ctrlKey || e.metaKey, key = e.key.toLowerCase();
  const actions = {
    z: () => ctrl && (e.shiftKey ? editor.redo() : editor.undo()),
    y: () => ctrl && editor.redo(),
    b: () => !ctrl && setTool("brush"),
    e: () => !ctrl && setTool("erase"),
    i: () => !ctrl && editor.invert(),
    x: () => !ctrl && editor.clear(),
    f: () => !ctrl && editor.fit(),
    1: () => !ctrl && editor.actual(),
    "+": () => editor.zoomCentre(1.25), "=": () => editor.zoomCentre(1.25),
    "-": () => editor.zoomCentre(0.8),
    "[": () => brushBy(-4), "]": () => brushBy(4),
    enter: () => ctrl && run(),
  };
  if (key === " ") { editor.spaceHeld = true; e.preventDefault(); return; }
  if (actions[key] && editor.loaded) { actions[key](); e.preventDefault(); }
});
document.addEventListener("keyup", (e) => { if (e.key === " ") editor.spaceHeld = false; });

// ---- settings, cost and time
function schedule() {
  return { t_T: Number($("t_T").value), jump_length: Number($("jump_length").value),
           jump_n_sample: Number($("jump_n_sample").value) };
}
function extendSides() {
  const text = $("extend").value.trim();
  if (!text) return null;
  const sides = text.split(",").map(Number);
  return sides.length === 1 ? sides[0] : sides;
}
function options() {
  const prompted = config.prompted.includes($("model").value);
  return {
    model: $("model").value, preset: $("preset").value, sampler: $("sampler").value,
    schedule: schedule(), seed: $("seed").value, num_samples: Number($("samples").value),
    extend: extendSides(),
    ...(prompted ? { prompt: $("prompt").value, negative_prompt: $("negative-prompt").value } : {}),
  };
}
const duration = (s) => s < 90 ? `${Math.ceil(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
let estimates = 0; // requests sent: only the newest one's answer is shown
/** Asks the server what the settings cost, shows it unless a later change has asked again
 * (answers can arrive out of order), and returns it (null when refused). */
async function updateEstimate() {
  const mine = ++estimates;
  try {
    const estimate = await api("/api/estimate", { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(options()) });
    if (mine === estimates) {
      $("evaluations").textContent = estimate.evaluations.toLocaleString("en");
      $("estimate").textContent = estimate.seconds == null ? ""
        : `(about ${duration(estimate.seconds)} per window on ${estimate.device})`;
      fail("");
    }
    return estimate;
  } catch (error) {
    if (mine === estimates) {
      $("evaluations").textContent = "-"; $("estimate").textContent = ""; fail(error.message);
    }
    return null;
  }
}
function applyPreset() {
  const p = config.presets[$("preset").value];
  for (const key of ["t_T", "jump_length", "jump_n_sample"]) $(key).value = p[key];
  updateEstimate();
}
for (const id of ["t_T", "jump_length", "jump_n_sample", "sampler", "samples", "model"]) {
  $(id).addEventListener("change", updateEstimate);
}
$("model").addEventListener("change", () => {
  const prompted = config.prompted.includes($("model").value);
  for (const el of document.querySelectorAll(".prompted")) el.hidden = !prompted;
});
$("preset").onchange = applyPreset;

async function run() {
  fail("");
  if (!editor.loaded) return fail("Choose an image first.");
  if (!editor.painted() && !extendSides()) return fail("Paint the area to fill first (or extend the image).");
  const estimate = await updateEstimate();
  if (!estimate) return;
  if (estimate.confirm && !window.confirm(
    `This run takes about ${duration(estimate.seconds)} per window on ${estimate.device}. Run it?`)) return;
  const image = await new Promise((done) => editor.photo.toBlob(done, "image/png"));
  try {
    await runs.submit(options(), image, await editor.blob(), { parent });
  } catch (error) { fail(error.message); }
}
$("run").onclick = run;

// ---- theme and help
function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("theme").textContent = theme === "light" ? "Dark" : "Light";
  localStorage.setItem("repaint-theme", theme);
}
$("theme").onclick = () => setTheme(document.documentElement.dataset.theme === "light" ? "dark" : "light");
setTheme(localStorage.getItem("repaint-theme")
  || (matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark"));
$("help").onclick = () => {
  const open = $("shortcuts").hidden;
  $("shortcuts").hidden = !open;
  $("help").setAttribute("aria-expanded", open);
};

(async () => {
  config = await api("/api/config");
  for (const name of config.models) $("model").add(new Option(name, name, false, name === config.model));
  for (const [name, p] of Object.entries(config.presets)) {
    $("preset").add(new Option(`${name} (${p.evaluations})`, name, false, name === config.preset));
  }
  for (const [name, words] of Object.entries(config.samplers)) {
    const option = new Option(name, name, false, name === "repaint");
    option.title = words;
    $("sampler").add(option);
  }
  $("samples").max = config.max_samples;
  $("model").dispatchEvent(new Event("change"));
  applyPreset();
})();
