// The image and its mask on a stage that zooms and pans inside the viewport: brush and
// eraser by mouse, pen or finger (pointer events), undo/redo, invert, clear, mask files.
// The mask canvas has the image's own size; painted pixels (alpha > 127) are to be filled.

const PAINT = [255, 0, 80, 255];
const HISTORY_BYTES = 200e6; // undo snapshots kept, in bytes of mask pixels

export class Editor {
  constructor({ viewport, stage, photo, mask, cursor, onChange }) {
    Object.assign(this, { viewport, stage, photo, mask, cursor, onChange });
    this.tool = "brush";
    this.size = 24; // screen pixels
    this.view = { scale: 1, x: 0, y: 0 };
    this.pointers = new Map();
    this.history = [];
    this.position = -1;
    this.spaceHeld = false;
    mask.getContext("2d", { willReadFrequently: true }); // undo snapshots read it back often
    this.bind();
  }

  get loaded() { return this.photo.width > 0; }

  setImage(img) {
    for (const canvas of [this.photo, this.mask]) {
      canvas.width = img.naturalWidth || img.width;
      canvas.height = img.naturalHeight || img.height;
    }
    this.stage.style.width = `${this.photo.width}px`;
    this.stage.style.height = `${this.photo.height}px`;
    this.photo.getContext("2d").drawImage(img, 0, 0);
    this.history = [];
    this.position = -1;
    this.clear();
    this.fit();
  }

  // ---- view: fit, 100%, zoom about a point, pan
  fit() {
    if (!this.loaded) return;
    const box = this.viewport.getBoundingClientRect();
    const scale = Math.min(box.width / this.photo.width, box.height / this.photo.height) * 0.96;
    this.setView(scale, (box.width - this.photo.width * scale) / 2,
      (box.height - this.photo.height * scale) / 2);
  }

  actual() {
    const box = this.viewport.getBoundingClientRect();
    this.zoomAt(1 / this.view.scale, box.width / 2, box.height / 2);
  }

  zoomAt(factor, cx, cy) {
    const scale = Math.min(Math.max(this.view.scale * factor, 0.05), 64);
    const k = scale / this.view.scale;
    this.setView(scale, cx - (cx - this.view.x) * k, cy - (cy - this.view.y) * k);
  }

  zoomCentre(factor) {
    const box = this.viewport.getBoundingClientRect();
    this.zoomAt(factor, box.width / 2, box.height / 2);
  }

  setView(scale, x, y) {
    this.view = { scale, x, y };
    this.stage.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
    this.onChange?.("view");
  }

  // ---- mask edits, each one undoable
  snapshot() {
    const g = this.mask.getContext("2d");
    const data = g.getImageData(0, 0, this.mask.width, this.mask.height);
    this.history = this.history.slice(0, this.position + 1);
    this.history.push(data);
    const keep = Math.max(5, Math.floor(HISTORY_BYTES / Math.max(data.data.length, 1)));
    if (this.history.length > keep) this.history.splice(0, this.history.length - keep);
    this.position = this.history.length - 1;
    this.onChange?.("mask");
  }

  restore(position) {
    this.position = position;
    this.mask.getContext("2d").putImageData(this.history[position], 0, 0);
    this.onChange?.("mask");
  }

  get canUndo() { return this.position > 0; }
  get canRedo() { return this.position < this.history.length - 1; }
  undo() { if (this.canUndo) this.restore(this.position - 1); }
  redo() { if (this.canRedo) this.restore(this.position + 1); }

  clear() {
    this.mask.getContext("2d").clearRect(0, 0, this.mask.width, this.mask.height);
    this.snapshot();
  }

  mapPixels(paint) { // paint(i, data) -> painted?; rewrites every mask pixel
    const g = this.mask.getContext("2d");
    const data = g.getImageData(0, 0, this.mask.width, this.mask.height);
    for (let i = 0; i < data.data.length; i += 4) {
      data.data.set(paint(i, data.data) ? PAINT : [0, 0, 0, 0], i);
    }
    g.putImageData(data, 0, 0);
    this.snapshot();
  }

  invert() { this.mapPixels((i, d) => d[i + 3] <= 127); }

  loadMask(img) { // white = fill, resized to the image
    const c = document.createElement("canvas");
    c.width = this.mask.width; c.height = this.mask.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0, c.width, c.height);
    const src = g.getImageData(0, 0, c.width, c.height).data;
    this.mapPixels((i) => src[i] + src[i + 1] + src[i + 2] > 382);
  }

  painted() {
    const d = this.mask.getContext("2d").getImageData(0, 0, this.mask.width, this.mask.height).data;
    let count = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 127) count++;
    return count;
  }

  blob() { // white = fill, black = keep, at the image's size
    const c = document.createElement("canvas");
    c.width = this.mask.width; c.height = this.mask.height;
    const g = c.getContext("2d");
    const src = this.mask.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const out = g.createImageData(c.width, c.height);
    for (let i = 0; i < src.length; i += 4) {
      const v = src[i + 3] > 127 ? 255 : 0;
      out.data.set([v, v, v, 255], i);
    }
    g.putImageData(out, 0, 0);
    return new Promise((done) => c.toBlob(done, "image/png"));
  }

  // ---- pointers: one paints (or pans with space / the middle button), two pinch and pan
  local(event) {
    const box = this.viewport.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  imagePoint(event) {
    const box = this.mask.getBoundingClientRect();
    return [(event.clientX - box.left) * this.mask.width / box.width,
            (event.clientY - box.top) * this.mask.height / box.height];
  }

  dab(event) {
    const g = this.mask.getContext("2d");
    const [x, y] = this.imagePoint(event);
    g.globalCompositeOperation = this.tool === "erase" ? "destination-out" : "source-over";
    g.strokeStyle = g.fillStyle = `rgb(${PAINT.slice(0, 3).join(",")})`;
    g.lineWidth = Math.max(this.size / this.view.scale, 1);
    g.lineCap = g.lineJoin = "round";
    g.beginPath();
    g.moveTo(...(this.last || [x, y]));
    g.lineTo(x, y);
    g.stroke();
    this.last = [x, y];
  }

  showCursor(event) {
    const [x, y] = this.local(event);
    Object.assign(this.cursor.style, { left: `${x}px`, top: `${y}px`,
      width: `${this.size}px`, height: `${this.size}px` });
    this.cursor.hidden = event.pointerType === "touch" || !this.loaded;
  }

  bind() {
    const v = this.viewport;
    v.addEventListener("pointerdown", (e) => {
      if (!this.loaded) return;
      v.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, this.local(e));
      if (this.pointers.size === 2) { // a second finger: undo the stroke begun, pinch instead
        if (this.mode === "paint") { this.last = null; this.restore(this.position); }
        this.startPinch();
      } else if (this.pointers.size === 1) {
        if (e.button === 1 || this.spaceHeld) { this.mode = "pan"; }
        else if (e.button === 0) { this.mode = "paint"; this.last = null; this.dab(e); }
      }
      e.preventDefault();
    });
    v.addEventListener("pointermove", (e) => {
      this.showCursor(e);
      if (!this.pointers.has(e.pointerId)) return;
      const previous = this.pointers.get(e.pointerId);
      const now = this.local(e);
      this.pointers.set(e.pointerId, now);
      if (this.mode === "pinch") this.movePinch();
      else if (this.mode === "pan") {
        this.setView(this.view.scale, this.view.x + now[0] - previous[0], this.view.y + now[1] - previous[1]);
      } else if (this.mode === "paint") this.dab(e);
    });
    const up = (e) => {
      if (!this.pointers.delete(e.pointerId)) return;
      if (this.mode === "paint") this.endStroke();
      if (this.pointers.size === 0) this.mode = null;
      else if (this.mode === "pinch") this.mode = "done"; // the other finger does nothing more
    };
    v.addEventListener("pointerup", up);
    v.addEventListener("pointercancel", up);
    v.addEventListener("pointerleave", (e) => { if (e.pointerType !== "touch") this.cursor.hidden = true; });
    v.addEventListener("wheel", (e) => {
      if (!this.loaded) return;
      e.preventDefault();
      const [x, y] = this.local(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), x, y);
    }, { passive: false });
  }

  endStroke() { this.last = null; this.mode = null; this.snapshot(); }

  startPinch() {
    const [a, b] = [...this.pointers.values()];
    this.mode = "pinch";
    this.pinch = { distance: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1,
                   mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], view: { ...this.view } };
  }

  movePinch() {
    const [a, b] = [...this.pointers.values()];
    const { distance, mid, view } = this.pinch;
    const scale = Math.min(Math.max(view.scale * Math.hypot(a[0] - b[0], a[1] - b[1]) / distance, 0.05), 64);
    const now = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const k = scale / view.scale; // keep the image point under the first midpoint under the fingers
    this.setView(scale, now[0] - (mid[0] - view.x) * k, now[1] - (mid[1] - view.y) * k);
  }
}
