"""Give a Hugging Face CLIP directory the ONNX files transformers.js loads, for the benchmark.

Run by hand (needs torch, transformers, onnx, onnxscript, onnxruntime):

    python scripts/bench/export_onnx.py MODEL_DIR

Writes MODEL_DIR/onnx/vision_model.onnx (pixel_values -> image_embeds) and
MODEL_DIR/onnx/text_model.onnx (input_ids, attention_mask -> text_embeds), f32, with dynamic
batch (and sequence) axes, their q8 versions (`*_quantized.onnx`), plus the tokenizer files
transformers.js wants. The weights are the directory's own model.safetensors, so both engines
run the very same model.
"""

import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

ROOT = Path(__file__).resolve().parents[2]


class Vision(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        return self.m(pixel_values=pixel_values).image_embeds


class Text(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).text_embeds


def quantize(out: Path) -> None:
    """The q8 files transformers.js loads with `dtype: "q8"` (its default on the CPU):
    onnxruntime's dynamic quantization of the weights to unsigned 8 bits, per tensor, as
    transformers.js's conversion script writes them."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name in ["vision_model", "text_model"]:
        quantize_dynamic(
            out / f"{name}.onnx",
            out / f"{name}_quantized.onnx",
            weight_type=QuantType.QUInt8,
            per_channel=False,
            reduce_range=False,
        )


def main() -> None:
    model_dir = Path(sys.argv[1])
    out = model_dir / "onnx"
    out.mkdir(exist_ok=True)
    torch.set_grad_enabled(False)
    vision = Vision(CLIPVisionModelWithProjection.from_pretrained(model_dir).eval())
    size = json.loads((model_dir / "config.json").read_text())["vision_config"]["image_size"]
    torch.onnx.export(
        vision,
        (torch.randn(1, 3, size, size),),
        str(out / "vision_model.onnx"),
        input_names=["pixel_values"],
        output_names=["image_embeds"],
        dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    text = Text(CLIPTextModelWithProjection.from_pretrained(model_dir).eval())
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 269, 49407]])
    torch.onnx.export(
        text,
        (ids, torch.ones_like(ids)),
        str(out / "text_model.onnx"),
        input_names=["input_ids", "attention_mask"],
        output_names=["text_embeds"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    if not (model_dir / "tokenizer.json").exists():
        shutil.copy(ROOT / "src" / "tokenizer.json", model_dir / "tokenizer.json")
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})
    )
    quantize(out)
    for f in sorted(out.iterdir()):
        print(f, f"{f.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
