"""What quantizing the activations costs, on top of 8-bit weights (issue 16, item 3), at the
real ViT-B/32 shape: transformers on the q8 file's values (i8 x scale), with the input of every
8-bit Linear quantized as an 8-bit CPU product would quantize it, against the f32 model, on 20
photos with CLIP's ImageNet labels (998 distinct names), for each way of quantizing:

- per row (one scale per token's whole input) or per block of 32 values (the weights' blocks);
- to 8 bits (+-127) or 7 bits (+-63: what relaxed SIMD's i8 x i7 dot product takes);

all symmetric, scale = max|x| / qmax, q = round-half-even(x * (1 / scale)), which is what
webclip's kernel does (src/kernels/simd128_q8.rs), so the row it picks is also the model the
page computes. The 8-bit weights are `webclip convert --dtype q8`'s, computed here by
tests/fixtures/make_q8.py's `quantize` (which the tests hold convert to, byte for byte). Run by
hand (not in CI: 600 MB of weights, torch + transformers):

    python scripts/q8_activations.py [MODEL_DIR]
    #   MODEL_DIR: an f32 Hugging Face CLIP directory (default /tmp/webclip-real/vit-b-32,
    #   made by scripts/parity_real_shapes.py)
"""

import sys
from pathlib import Path

import skimage
import torch
from PIL import Image
from transformers import CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from q8_accuracy import PHOTOS, ROOT, imagenet

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from make_q8 import BLOCK, quantize  # noqa: E402


def q8_values(state: dict) -> dict:
    """What the q8 file holds, as f32 (i8 x scale), for every tensor it stores in 8 bits."""
    out = {}
    for key, w in state.items():
        if w.dim() >= 2 and w.shape[-1] % BLOCK == 0:
            q, scale = quantize(w)
            out[key] = (q.float().reshape(-1, BLOCK) * scale.float().reshape(-1, 1)).reshape(w.shape)
    return out


def fake_quant(x: torch.Tensor, block: int | None, qmax: float) -> torch.Tensor:
    """x quantized along its last dimension, per `block` values (None: the whole row), and back."""
    shape = x.shape
    xs = x.reshape(*shape[:-1], -1, block or shape[-1])
    scale = xs.abs().amax(-1, keepdim=True) / qmax
    inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
    q = torch.round(xs * inv).clamp(-qmax, qmax)
    return (q * scale).reshape(shape)


def fake_quant_asymmetric(x: torch.Tensor, block: int, levels: float) -> torch.Tensor:
    """x quantized per `block` values to `levels + 1` levels between the block's min and max
    (0 among them: an integer zero point), and back."""
    shape = x.shape
    xs = x.reshape(*shape[:-1], -1, block)
    lo = xs.amin(-1, keepdim=True).clamp(max=0)
    hi = xs.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / levels
    inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
    zero = torch.round(-lo * inv)
    q = (torch.round(xs * inv) + zero).clamp(0, levels)
    return ((q - zero) * scale).reshape(shape)


def quantize_inputs(model: CLIPModel, quant, only: str = "") -> list:
    """Hooks that quantize the input of every Linear whose weight the q8 file holds in 8 bits
    (in-features a multiple of 32: all of ViT-B/32's), or of those whose name holds `only`."""
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and module.in_features % 32 == 0 and only in name:
            hooks.append(module.register_forward_pre_hook(lambda m, args: (quant(args[0]),)))
    return hooks


def main() -> None:
    args = sys.argv[1:]
    model_dir = Path(args[0] if args else "/tmp/webclip-real/vit-b-32")  # then the rows to run, if not all
    labels = list(dict.fromkeys(imagenet()))
    texts = [f"a photo of a {label}." for label in labels]
    photo_dir = Path(skimage.__file__).parent / "data"
    tokenizer = CLIPTokenizer.from_pretrained(str(ROOT / "src"))
    processor = CLIPImageProcessorPil()
    model = CLIPModel.from_pretrained(str(model_dir), torch_dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    pix = processor([Image.open(photo_dir / p) for p in PHOTOS], return_tensors="pt")["pixel_values"]

    def run():
        with torch.no_grad():
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pix)
        return out.logits_per_image, out.image_embeds, out.text_embeds

    f32 = run()
    model.load_state_dict(q8_values(model.state_dict()), strict=False)
    top2 = f32[0].topk(2, -1).values
    margin = top2[:, 0] - top2[:, 1]
    print(f"f32 model: top-1/top-2 logit margins {margin.min().item():.3f}-{margin.max().item():.3f}")
    print("| activations | top-1 agreement | largest logit change | image embeddings, largest change | text embeddings, largest change |")
    print("|---|---|---|---|---|")
    schemes = [("f32 (weights only in 8 bits)", None, "")]
    schemes += [(f"{bits}-bit, {'per block of 32' if block else 'per row'}", lambda x, b=block, q=qmax: fake_quant(x, b, q), "")
                for bits, qmax in [(8, 127.0), (7, 63.0)] for block in [None, 32]]
    schemes += [("7-bit asymmetric (min to max), per block of 32", lambda x: fake_quant_asymmetric(x, 32, 127.0), "")]
    schemes += [(f"7-bit, per block of 32, {only} only", lambda x: fake_quant(x, 32, 63.0), only) for only in ["fc2", "fc1", "proj"]]
    pick = [a for a in args[1:]]
    for i, (name, scheme, only) in enumerate(schemes):
        if pick and str(i) not in pick:
            continue
        hooks = quantize_inputs(model, scheme, only) if scheme else []
        logits, image, text = run()
        for h in hooks:
            h.remove()
        agree = (logits.argmax(-1) == f32[0].argmax(-1)).sum().item()
        print(f"| {name} | {agree}/{len(PHOTOS)} | {(logits - f32[0]).abs().max().item():.3f} | "
              f"{(image - f32[1]).abs().max().item():.1e} | {(text - f32[2]).abs().max().item():.1e} |")


if __name__ == "__main__":
    main()
