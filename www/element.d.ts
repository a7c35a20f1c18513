// Types for <webclip-classifier> (www/element.js). Importing the module defines the element
// and exports nothing at run time, so the class is exported as a type only: use it to type
// document.querySelector results and event listeners, not to construct or subclass.

import type { ClassifyResult, ClipModel, ImageInput, ModelInfo } from "./api.js";

export interface WebclipErrorDetail {
  /** Why, in words (also shown in the element). */
  message: string;
}

export interface WebclipClassifierEventMap extends HTMLElementEventMap {
  /** The model is loaded; detail: what loaded, on which backend. */
  "webclip-ready": CustomEvent<ModelInfo>;
  /** An image was classified; detail: the top-k predictions and the engine's time. */
  "webclip-result": CustomEvent<ClassifyResult>;
  /** Loading or classifying failed; the element keeps working for the next image. */
  "webclip-error": CustomEvent<WebclipErrorDetail>;
}

/**
 * Drop-in zero-shot classification: a drop zone (or the image in `src`) and ranked results.
 *
 * Attributes, read when the element is connected (model, backend, dtype, precision) or whenever they change
 * (labels, template, top-k, src):
 * - `model`: repo id, hub address or base URL (default: DEFAULT_MODEL)
 * - `labels`: comma-separated
 * - `template`: prompt with `{}` (default "a photo of a {}.")
 * - `top-k`: how many predictions to show (default 5)
 * - `backend`: "auto" | "webgpu" | "cpu"
 * - `dtype`: "auto" | "q8" (the repository's 8-bit model.q8.safetensors)
 * - `precision`: "f32" | "f16" (on a WebGPU adapter with shader-f16)
 * - `src`: an image URL to classify at once (fetched, so cross-origin images need CORS)
 *
 * Elements with the same model, backend, dtype and precision share one engine. The events bubble.
 */
export declare class WebclipClassifier extends HTMLElement {
  static readonly observedAttributes: string[];
  /** The shared model this element uses, once connected; await it to embed or classify
   * directly. (Not the `model` attribute: set that with setAttribute.) */
  readonly model: Promise<ClipModel> | undefined;
  /** The `labels` attribute, split and trimmed. */
  readonly labels: string[];
  /** Classify an image (or an image URL, relative to the page) and show the results. Never
   * rejects: failures are shown and sent as "webclip-error". */
  classify(image: ImageInput | string): Promise<void>;

  addEventListener<K extends keyof WebclipClassifierEventMap>(type: K, listener: (this: WebclipClassifier, ev: WebclipClassifierEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof WebclipClassifierEventMap>(type: K, listener: (this: WebclipClassifier, ev: WebclipClassifierEventMap[K]) => unknown, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "webclip-classifier": WebclipClassifier;
  }
  // The events bubble, so listeners on document or a container see them typed too.
  interface GlobalEventHandlersEventMap {
    "webclip-ready": CustomEvent<ModelInfo>;
    "webclip-result": CustomEvent<ClassifyResult>;
    "webclip-error": CustomEvent<WebclipErrorDetail>;
  }
}
