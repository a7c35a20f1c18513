// <webclip-classifier>: drop-in zero-shot classification for any page.
//
//   <script type="module" src="https://your.host/www/element.js"></script>
//   <webclip-classifier model="openai/clip-vit-base-patch32" labels="cat, dog, bird" top-k="3"
//                       src="photo.jpg"></webclip-classifier>
//
// Attributes: model (repo id or base URL), labels (comma-separated), template (with {}),
// top-k, backend (auto | webgpu | cpu), dtype (auto | q8: the repository's 8-bit
// model.q8.safetensors), precision (f32 | f16: on WebGPU with shader-f16), src (an image to
// classify at once). Without src it shows a drop zone. Instances on a page with the same
// model, backend, dtype and precision share one engine.
// Events: "webclip-ready" (detail: model info), "webclip-result" (detail: {predictions, ms}),
// "webclip-error" (detail: {message}).

import { DEFAULT_TEMPLATE, loadModel } from "./api.js";

const engines = new Map();
function sharedModel(model, backend, dtype, precision) {
  const key = `${model}\n${backend}\n${dtype}\n${precision}`;
  if (!engines.has(key)) engines.set(key, loadModel({ model, backend, dtype, precision }).catch((e) => (engines.delete(key), Promise.reject(e))));
  return engines.get(key);
}

const STYLE = `
:host { display: block; font: 14px/1.45 system-ui, sans-serif; color: inherit; }
.box { border: 1px solid color-mix(in srgb, currentColor 18%, transparent); border-radius: 12px; padding: 12px; }
.drop { border: 2px dashed color-mix(in srgb, currentColor 25%, transparent); border-radius: 10px; padding: 14px; text-align: center; cursor: pointer; }
.drop.over { border-color: #6366f1; }
img { max-width: 100%; max-height: 220px; border-radius: 8px; display: block; margin: 0 auto 10px; }
ol { list-style: none; margin: 10px 0 0; padding: 0; display: grid; gap: 4px; }
li { position: relative; display: flex; justify-content: space-between; padding: 3px 8px; border-radius: 6px; overflow: hidden; background: color-mix(in srgb, #6366f1 10%, transparent); }
li::before { content: ""; position: absolute; inset: 0; width: calc(var(--p) * 100%); background: #6366f1; opacity: .3; }
li span { position: relative; }
.status { opacity: .7; font-size: 12px; margin-top: 6px; }
.error { color: #d92d20; }
`;

/// A constructed stylesheet, not a <style> element: CSP's style-src does not govern it, so a
/// host page needs no 'unsafe-inline' for the element.
let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

export class WebclipClassifier extends HTMLElement {
  static observedAttributes = ["src", "labels", "template", "top-k"];

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styles()];
    root.innerHTML = `
      <div class="box" part="box">
        <label class="drop" part="drop"><input type="file" accept="image/*" hidden><span>Drop an image or click to choose</span></label>
        <img part="image" hidden><ol part="results"></ol><div class="status" part="status">Loading model…</div>
      </div>`;
    this.$ = (s) => this.shadowRoot.querySelector(s);
    const drop = this.$(".drop");
    this.$("input").addEventListener("change", (e) => e.target.files[0] && this.classify(e.target.files[0]));
    drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer.files[0]) this.classify(e.dataTransfer.files[0]);
    });
  }

  connectedCallback() {
    this.model = sharedModel(this.getAttribute("model") || undefined, this.getAttribute("backend") || "auto", this.getAttribute("dtype") || "auto", this.getAttribute("precision") || "f32");
    this.model.then(
      (m) => {
        this.status(`Ready · ${m.info.backend === "webgpu" ? `WebGPU (${m.info.adapter})` : "CPU"}`);
        this.dispatchEvent(new CustomEvent("webclip-ready", { detail: m.info, bubbles: true }));
        if (this.getAttribute("src")) this.classify(this.getAttribute("src"));
      },
      (e) => this.fail(e),
    );
  }

  attributeChangedCallback(name, old, value) {
    if (old === null || old === value || !this.model) return;
    if (this.lastImage && name !== "src") this.classify(this.lastImage);
    if (name === "src" && value) this.classify(value);
  }

  get labels() {
    return (this.getAttribute("labels") || "").split(",").map((l) => l.trim()).filter(Boolean);
  }

  /// Classify a File/Blob, an image URL, or any image-like object api.js accepts.
  async classify(image) {
    this.lastImage = image;
    try {
      const model = await this.model;
      if (typeof image === "string") image = await (await fetch(new URL(image, document.baseURI))).blob();
      const img = this.$("img");
      if (image instanceof Blob) {
        img.src = URL.createObjectURL(image);
        img.hidden = false;
      }
      this.status("Classifying…");
      const out = await model.classify(image, {
        labels: this.labels,
        templates: [this.getAttribute("template") || DEFAULT_TEMPLATE],
        topK: Number(this.getAttribute("top-k")) || 5,
      });
      this.$("ol").replaceChildren(
        ...out.predictions.map((p) => {
          const li = document.createElement("li");
          li.style.setProperty("--p", p.probability);
          li.dataset.label = p.label;
          li.dataset.probability = String(p.probability);
          li.innerHTML = "<span></span><span></span>";
          li.children[0].textContent = p.label;
          li.children[1].textContent = `${(p.probability * 100).toFixed(1)}%`;
          return li;
        }),
      );
      this.status(`${Math.round(out.ms)} ms`);
      this.dispatchEvent(new CustomEvent("webclip-result", { detail: out, bubbles: true }));
    } catch (e) {
      this.fail(e);
    }
  }

  status(text) {
    const s = this.$(".status");
    s.className = "status";
    s.textContent = text;
  }

  fail(e) {
    const s = this.$(".status");
    s.className = "status error";
    s.textContent = e.message;
    this.dispatchEvent(new CustomEvent("webclip-error", { detail: { message: e.message }, bubbles: true }));
  }
}

// Loaded twice (say, from a CDN and from a bundle), the first definition stays.
if (!customElements.get("webclip-classifier")) customElements.define("webclip-classifier", WebclipClassifier);
