"""Parity with transformers at the real ViT-B/32 and ViT-B/16 shapes, through the CLI.

Run by hand (not in CI: each model is ~600 MB and needs torch + transformers):

    cargo build --release
    python scripts/parity_real_shapes.py [WORKDIR] [--bin] [--backends cpu,wgpu] [--shapes vit-b-32,vit-b-16]
    #   default WORKDIR: /tmp/webclip-real; --bin: save pytorch_model.bin (torch.save, with the
    #   int64 position_ids old hub checkpoints carry) instead of model.safetensors
    #   --precision f16: webclip computes in f16 (wgpu only): reported, not held to f32's bounds

For each shape it builds a random-weight `CLIPModel` with OpenAI's exact configuration (made
sensitive as the test fixtures are: random LayerNorms and biases, logit_scale = ln 100), saves
it in the Hugging Face layout (f32 `model.safetensors`, as the openai repos ship), computes
logits and embeddings for the sample photos with transformers, then runs
`webclip classify --json` and `webclip embed --json` on both backends and prints the largest
differences. The figures go in the README's testing section.
"""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from make_fixtures import LABELS, PHOTOS, sensitive_  # noqa: E402

SHAPES = {"vit-b-32": 32, "vit-b-16": 16}
WEBCLIP = ROOT / "target" / "release" / "webclip"


def build(name: str, patch: int, out: Path, bin_format: bool = False) -> CLIPModel:
    config = CLIPConfig(
        text_config=dict(eos_token_id=2),  # as OpenAI's configs: legacy argmax pooling
        vision_config=dict(patch_size=patch),
        projection_dim=512,
        initializer_factor=1.0,
    )
    torch.manual_seed(patch)
    model = CLIPModel(config).eval()
    model.config._attn_implementation = "eager"
    sensitive_(model, torch.Generator().manual_seed(patch))
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if bin_format:
        n = (config.vision_config.image_size // patch) ** 2 + 1
        state["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
        state["vision_model.embeddings.position_ids"] = torch.arange(n).unsqueeze(0)
        (out / "model.safetensors").unlink(missing_ok=True)
        torch.save(state, out / "pytorch_model.bin")
    else:
        (out / "pytorch_model.bin").unlink(missing_ok=True)
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(out))
    (out / "preprocessor_config.json").write_text(json.dumps(CLIPImageProcessorPil().to_dict()))
    return model


def run(args: list[str]) -> tuple[object, float]:
    t = time.time()
    res = subprocess.run([str(WEBCLIP), *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"webclip {args[:3]} failed: {res.stderr}")
    return json.loads(res.stdout), time.time() - t


def option(name: str, default: str) -> str:
    args = sys.argv[1:]
    return args[args.index(name) + 1] if name in args else default


def main() -> None:
    args = sys.argv[1:]
    values = {args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--backends", "--shapes", "--precision")}
    positional = [a for a in args if not a.startswith("--") and a not in values]
    work = Path(positional[0] if positional else "/tmp/webclip-real")
    bin_format = "--bin" in sys.argv
    backends = option("--backends", "cpu,wgpu").split(",")
    precision = option("--precision", "f32")
    shapes = {k: v for k, v in SHAPES.items() if k in option("--shapes", ",".join(SHAPES)).split(",")}
    images = [ROOT / "tests" / "fixtures" / "images" / p for p in PHOTOS]
    tokenizer = CLIPTokenizer.from_pretrained(str(ROOT / "src"))
    processor = CLIPImageProcessorPil()
    texts = [f"a photo of a {label}." for label in LABELS]
    rows = []
    for name, patch in shapes.items():
        out = work / name
        model = build(name, patch, out, bin_format)
        with torch.no_grad():
            enc = tokenizer(texts, padding=True, return_tensors="pt")
            pix = processor([Image.open(p) for p in images], return_tensors="pt")["pixel_values"]
            ref = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pix)
        print(f"{name}: reference max probability per image {ref.logits_per_image.softmax(-1).max(-1).values.tolist()}")
        for backend in backends:
            label_args = [a for label in LABELS for a in ("--label", label)]
            common = ["--model", str(out), "--backend", backend, "--precision", precision, "--json"]
            cls, t_cls = run(["classify", *common, *label_args, *map(str, images)])
            emb_args = [a for p in images for a in ("--image", str(p))] + [a for t in texts for a in ("--text", t)]
            emb, t_emb = run(["embed", *common, *emb_args])
            logit_diff = prob_diff = 0.0
            for i, res in enumerate(cls):
                for p in res["predictions"]:
                    j = LABELS.index(p["label"])
                    logit_diff = max(logit_diff, abs(p["logit"] - ref.logits_per_image[i, j].item()))
                    prob_diff = max(prob_diff, abs(p["probability"] - ref.logits_per_image[i].softmax(-1)[j].item()))
            want = torch.cat([ref.image_embeds, ref.text_embeds])
            got = torch.tensor([e["embedding"] for e in emb])
            embed_diff = (got - want).abs().max().item()
            top_same = all(
                res["predictions"][0]["label"] == LABELS[ref.logits_per_image[i].argmax().item()] for i, res in enumerate(cls)
            )
            rows.append((name + (" (.bin)" if bin_format else "") + (f" {precision}" if precision != "f32" else ""), backend, logit_diff, prob_diff, embed_diff, top_same, t_cls, t_emb))
            print(rows[-1])
    print("\n| model | backend | max logit diff | max probability diff | max embedding diff | same top-1 | classify (s) | embed (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, backend, ld, pd, ed, same, tc, te in rows:
        print(f"| {name} | {backend} | {ld:.1e} | {pd:.1e} | {ed:.1e} | {'yes' if same else 'NO'} | {tc:.1f} | {te:.1f} |")
    bad = [r for r in rows if precision == "f32" and (r[2] > 1e-4 or r[4] > 1e-5)]
    if bad:
        raise SystemExit(f"parity outside 1e-4 (logits) / 1e-5 (embeddings): {bad}")


if __name__ == "__main__":
    main()
