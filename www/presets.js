// Label presets for the page. ImageNet uses CLIP's own class names and (optionally) its 80
// prompt templates, the setup behind CLIP's published zero-shot ImageNet accuracy.

import { IMAGENET_CLASSES, IMAGENET_TEMPLATES } from "./imagenet.js";

export const PRESETS = {
  everyday: {
    name: "Everyday things",
    labels: ["cat", "dog", "cup of coffee", "laptop", "bicycle", "car", "tree", "book", "person", "pizza", "flower", "rocket"],
  },
  animals: {
    name: "Animals",
    labels: ["cat", "dog", "horse", "cow", "sheep", "bird", "fish", "rabbit", "elephant", "giraffe", "zebra", "bear", "lion", "tiger", "monkey", "owl"],
  },
  food: {
    name: "Food and drink",
    labels: ["pizza", "burger", "salad", "sushi", "pasta", "cake", "ice cream", "bread", "soup", "coffee", "tea", "wine", "fruit", "sandwich"],
  },
  scenes: {
    name: "Places",
    labels: ["beach", "forest", "mountain", "city street", "kitchen", "office", "bedroom", "desert", "lake", "snowy landscape", "stadium", "library"],
  },
  moods: {
    name: "Photo style",
    labels: ["photo", "drawing", "painting", "cartoon", "sculpture", "screenshot", "diagram", "x-ray", "satellite image", "close-up"],
  },
  imagenet: {
    name: "ImageNet-1k (1000 classes)",
    labels: IMAGENET_CLASSES,
    templates: IMAGENET_TEMPLATES,
  },
};
