"""What 8-bit weights cost, at the real ViT-B/32 shape: `webclip convert --dtype q8`, then the
q8 model against transformers on the very values the file holds (exactness) and against the
f32 model (the cost of 8 bits), on 20 photos with CLIP's ImageNet labels (998 distinct names).

Run by hand (not in CI: 600 MB of weights, torch + transformers):

    cargo build --release
    python scripts/q8_accuracy.py [MODEL_DIR] [--backends cpu,wgpu]
    #   MODEL_DIR: an f32 Hugging Face CLIP directory (default /tmp/webclip-real/vit-b-32-st,
    #   made by scripts/parity_real_shapes.py); model.q8.safetensors is written next to it

No real CLIP weights can be downloaded here, so the model is random (made sensitive as the
fixtures are); the photos are scikit-image's bundled CC0 images. Prints, per backend: webclip
q8 vs transformers-on-q8 (max logit and probability differences), and q8 vs f32 (top-1
agreement, largest probability change, largest logit change).
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import skimage
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
WEBCLIP = ROOT / "target" / "release" / "webclip"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "retina.jpg",
          "motorcycle_left.png", "color.png", "horse.png", "camera.png", "coins.png", "moon.png", "page.png", "brick.png",
          "grass.png", "gravel.png", "logo.png", "cell.png", "clock_motion.png"]


def imagenet() -> list[str]:
    text = (ROOT / "www" / "imagenet.js").read_text()
    return json.loads(re.search(r"IMAGENET_CLASSES = (\[.*?\]);", text, re.S).group(1))


def dequantized(path: Path) -> dict:
    stored = load_file(str(path))
    out = {}
    for key, t in stored.items():
        if key.endswith("_scale") and key[: -len("_scale")] in stored:
            continue
        if t.dtype == torch.int8:
            s = stored[key + "_scale"].float()
            out[key] = (t.float().reshape(-1, 32) * s.reshape(-1, 1)).reshape(t.shape)
        else:
            out[key] = t.float()
    return out


def main() -> None:
    args = sys.argv[1:]
    backends = args[args.index("--backends") + 1].split(",") if "--backends" in args else ["cpu", "wgpu"]
    positional = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--backends")]
    model_dir = Path(positional[0] if positional else "/tmp/webclip-real/vit-b-32-st")
    q8 = model_dir / "model.q8.safetensors"
    subprocess.run([str(WEBCLIP), "convert", "--dtype", "q8", str(model_dir / "model.safetensors"), str(q8)], check=True)
    f32_size, q8_size = (model_dir / "model.safetensors").stat().st_size, q8.stat().st_size
    print(f"model.safetensors {f32_size / 1e6:.1f} MB -> model.q8.safetensors {q8_size / 1e6:.1f} MB")

    labels = list(dict.fromkeys(imagenet()))  # "crane" and "maillot" are two classes each
    texts = [f"a photo of a {label}." for label in labels]
    photo_dir = Path(skimage.__file__).parent / "data"
    images = [photo_dir / p for p in PHOTOS]
    tokenizer = CLIPTokenizer.from_pretrained(str(ROOT / "src"))
    processor = CLIPImageProcessorPil()
    model = CLIPModel.from_pretrained(str(model_dir), torch_dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        pix = processor([Image.open(p) for p in images], return_tensors="pt")["pixel_values"]
        f32 = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pix).logits_per_image
        model.load_state_dict(dequantized(q8), strict=False)
        ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pix).logits_per_image
    # What the figures below can mean: a random model's probabilities over 998 labels are near
    # uniform, so a probability change says little; the top-1 margins say how hard agreement is.
    top2 = f32.topk(2, -1).values
    margin = top2[:, 0] - top2[:, 1]
    print(f"f32 model: top probability {f32.softmax(-1).max(-1).values.min().item():.4f}-{f32.softmax(-1).max(-1).values.max().item():.4f}, "
          f"top-1/top-2 logit margin {margin.min().item():.3f}-{margin.max().item():.3f}")
    same = (ref.argmax(-1) == f32.argmax(-1)).sum().item()
    print(f"transformers, q8 values vs f32: top-1 agreement {same}/{len(images)}, "
          f"largest probability change {(ref.softmax(-1) - f32.softmax(-1)).abs().max().item():.2e}, "
          f"largest logit change {(ref - f32).abs().max().item():.3f}")

    labels_file = model_dir / "imagenet-labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    for backend in backends:
        t = time.time()
        res = subprocess.run([str(WEBCLIP), "classify", "--model", str(model_dir), "--weights", q8.name, "--backend", backend,
                              "--json", "--labels", str(labels_file), *map(str, images)], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"webclip classify failed: {res.stderr}")
        got = torch.full_like(ref, float("nan"))
        for i, row in enumerate(json.loads(res.stdout)):
            assert len(row["predictions"]) == len(labels), "every label's logit"
            for p in row["predictions"]:
                got[i, labels.index(p["label"])] = p["logit"]
        exact_logit = (got - ref).abs().max().item()
        exact_prob = (got.softmax(-1) - ref.softmax(-1)).abs().max().item()
        agree = (got.argmax(-1) == f32.argmax(-1)).sum().item()
        cost_prob = (got.softmax(-1) - f32.softmax(-1)).abs().max().item()
        print(f"webclip q8 on {backend} ({time.time() - t:.1f} s): vs transformers on q8 values: logits {exact_logit:.1e}, "
              f"probabilities {exact_prob:.1e}; vs f32: top-1 agreement {agree}/{len(images)}, largest probability change {cost_prob:.2e}")
        if exact_logit > 1e-4:
            raise SystemExit(f"{backend}: q8 parity outside 1e-4")


if __name__ == "__main__":
    main()
