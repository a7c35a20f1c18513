"""PyTorch eager on the same weights and cores as `webclip bench`: the vision tower on one
preprocessed image and the text tower on the 8 prompts webclip bench uses, medians of R runs.

    python scripts/bench/torch_native.py MODEL_DIR [--threads N] [--runs R]

Compare with `RAYON_NUM_THREADS=N webclip bench --model MODEL_DIR IMAGE` (its `vision` and
`text` rows: the same work, without decoding).
"""

import argparse
import statistics
import time

import torch
from transformers import CLIPModel, CLIPTokenizerFast

PROMPTS = [f"a photo of a {l}." for l in ["cat", "dog", "cup of coffee", "rocket", "astronaut", "bicycle", "red car", "mountain lake"]]


def median_ms(f, runs):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=9)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = CLIPModel.from_pretrained(a.model).eval()
    tok = CLIPTokenizerFast.from_pretrained(a.model)
    size = model.config.vision_config.image_size
    pixels = torch.randn(1, 3, size, size)
    ids = tok(PROMPTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        vision = median_ms(lambda: model.get_image_features(pixel_values=pixels), a.runs)
        text = median_ms(lambda: model.get_text_features(**ids), a.runs)
    print(f"torch {torch.__version__}, {a.threads} thread(s)")
    print(f"  vision  {vision[0]:8.2f} ms   (best {vision[1]:.2f})")
    print(f"  text    {text[0]:8.2f} ms   (best {text[1]:.2f})")


if __name__ == "__main__":
    main()
