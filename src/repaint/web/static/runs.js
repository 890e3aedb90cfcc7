// Jobs on the server: submit, follow (progress, live x_t and predicted image, recorded
// frames for the step scrubber), cancel, branch from a recorded step, and the gallery
// (compare with the input, download, use as the next input).

export async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || body.detail || response.statusText);
  return body;
}

const $ = (id) => document.getElementById(id);

export class Runs {
  constructor({ fail, onInput }) {
    this.fail = fail;
    this.onInput = onInput; // (image URL, parent label) when a result becomes the input
    this.jobs = new Map(); // id -> { options, image, mask, input (object URL), frames, seed }
    this.shown = null; // the job the live panel shows
    this.following = null; // the job being polled
    $("scrubber").oninput = () => this.showFrame(Number($("scrubber").value));
    $("branch").onclick = () => this.branch();
    $("cancel").onclick = () => this.following && api(`/api/jobs/${this.following}/cancel`, { method: "POST" });
  }

  async submit(options, image, mask, { parent = null } = {}) {
    const form = new FormData();
    form.append("image", image, "image.png");
    form.append("mask", mask, "mask.png");
    form.append("options", JSON.stringify({ ...options, parent }));
    const body = await api("/api/jobs", { method: "POST", body: form });
    this.jobs.set(body.id, { options, image, mask, input: URL.createObjectURL(image), parent, frames: [] });
    this.shown = this.following = body.id;
    $("cancel").disabled = false;
    this.poll(body.id);
    return body.id;
  }

  async poll(id) {
    let status;
    try { status = await api(`/api/jobs/${id}`); } catch (error) { return this.fail(error.message); }
    const job = this.jobs.get(id);
    const { state, step, total, position, eta_s } = status;
    Object.assign(job, { seed: status.seed, frames: status.frames, state });
    $("progress").max = total || 1; $("progress").value = step;
    if (state === "done") await this.addResults(id, status); // "Done." once they are shown
    $("status").textContent = state === "queued" ? `Queued: position ${position}`
      : state === "running" ? `Step ${step} of ${total}` + (eta_s != null ? `, about ${Math.ceil(eta_s)} s left` : "")
      : state === "done" ? "Done." : state === "cancelled" ? "Cancelled." : "Failed.";
    if (status.has_preview && this.shown === id && this.live()) {
      $("preview").src = `/api/jobs/${id}/preview.png?step=${step}`;
      $("preview-x").src = `/api/jobs/${id}/preview.png?kind=x_t&step=${step}`;
    }
    this.updateScrubber(id);
    if (state === "failed") this.fail(status.error);
    if (["done", "cancelled", "failed"].includes(state)) {
      $("cancel").disabled = true; this.following = null; return;
    }
    setTimeout(() => this.poll(id), 300);
  }

  live() { // the scrubber follows the run unless the user moved it back
    const s = $("scrubber");
    return s.disabled || Number(s.value) >= Number(s.max);
  }

  updateScrubber(id) {
    const frames = this.jobs.get(id).frames;
    const s = $("scrubber");
    const follow = this.live();
    s.disabled = frames.length === 0;
    s.max = Math.max(frames.length - 1, 0);
    if (follow) s.value = s.max;
    $("branch").disabled = frames.length === 0;
    this.label(Number(s.value));
  }

  label(index) {
    const frame = this.jobs.get(this.shown)?.frames[index];
    $("frame-label").textContent = frame
      ? `step ${frame.step}, level ${frame.level}: branching starts where the run first reached level ${frame.level}`
      : "";
  }

  showFrame(index) {
    if (!this.shown) return;
    $("preview").src = `/api/jobs/${this.shown}/frames/${index}.png`;
    $("preview-x").src = `/api/jobs/${this.shown}/frames/${index}.png?kind=x_t`;
    this.label(index);
  }

  async branch() {
    const job = this.jobs.get(this.shown);
    const frame = job?.frames[Number($("scrubber").value)];
    if (!frame) return;
    const k = Number($("branches").value);
    const options = { ...job.options, seed: job.seed, branch_at: Math.max(frame.level, 0), num_samples: k };
    try {
      await this.submit(options, job.image, job.mask, { parent: this.shown });
    } catch (error) { this.fail(error.message); }
  }

  async addResults(id, status) {
    const job = this.jobs.get(id);
    const group = document.createElement("div");
    group.className = "gallery group";
    const title = status.branch_at != null
      ? `${status.results} variations branched from job ${status.parent} at level ${status.branch_at}`
      : `job ${id}`;
    group.setAttribute("aria-label", title);
    for (let k = 0; k < status.results; k++) {
      const sidecar = await api(`/api/jobs/${id}/results/${k}.json`).catch(() => ({}));
      group.append(this.card(id, k, job, sidecar, status));
    }
    $("gallery").prepend(group);
  }

  card(id, k, job, sidecar, status) {
    const url = `/api/jobs/${id}/results/${k}.png`;
    const card = document.createElement("figure");
    card.className = "card";
    const schedule = sidecar.schedule || {};
    const parent = status.parent ? ` · from ${status.parent}` : "";
    const level = status.branch_at != null ? ` · branched at level ${status.branch_at}` : "";
    card.innerHTML = `
      <div class="compare" title="Hold to see the input">
        <img class="before" alt="the input" src="${job.input}">
        <img class="after" alt="result ${k + 1} of job ${id}" src="${url}">
      </div>
      <label>Before / after <input class="split" type="range" min="0" max="100" value="0"></label>
      <p class="meta">seed ${sidecar.options?.seed ?? status.seed} · ${sidecar.sampler ?? ""} ·
        t_T ${schedule.t_T ?? "?"}, jumps ${schedule.jump_length ?? "-"}x${schedule.jump_n_sample ?? "-"}${parent}${level}</p>
      <div class="actions">
        <a class="download" href="${url}" download>PNG</a>
        <a href="/api/jobs/${id}/results/${k}.json" download>sidecar</a>
        <button type="button" class="use">Use as input</button>
      </div>`;
    const after = card.querySelector(".after");
    const split = card.querySelector(".split");
    split.oninput = () => { after.style.clipPath = `inset(0 0 0 ${split.value}%)`; };
    const hold = card.querySelector(".compare");
    hold.onpointerdown = () => { after.style.visibility = "hidden"; };
    for (const end of ["pointerup", "pointerleave", "pointercancel"]) {
      hold.addEventListener(end, () => { after.style.visibility = ""; });
    }
    card.querySelector(".use").onclick = () => this.onInput(url, `${id}/${k}`);
    return card;
  }
}
