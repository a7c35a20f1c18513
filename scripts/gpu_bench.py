#!/usr/bin/env python3
"""webclip on wgpu (Vulkan) against PyTorch eager CLIP on the same GPU (issue 8, item 8).

Run on a machine with a GPU, PyTorch and transformers but no Rust (the lent device machine):
`scripts/gpu_bench_prepare.sh` builds here what travels (webclip's native binary, gzipped, in
.devbin/; the Vulkan loader's packages in .gl/), then one command there runs everything:

    for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
    python3 scripts/gpu_bench.py --webclip .devbin/webclip.gz --out $OUT

It writes a random-weight ViT-B/32 (transformers' default CLIPConfig is OpenAI's B/32 shape)
as a Hugging Face directory, times PyTorch's image tower (vision model + projection, eager,
f32 and f16) at each batch size, then `webclip bench --backend wgpu` on the same directory
(f32, and f16 where the adapter has shader-f16), and prints one markdown table. Medians of
--runs timed runs after warm-up runs; every time ends with the result on the host.

Runs anywhere else too (PyTorch on the CPU, wgpu on lavapipe), to check the script itself.
"""

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def make_model(directory, seed):
    import torch
    from transformers import CLIPConfig, CLIPModel

    if os.path.exists(os.path.join(directory, "model.safetensors")):
        return
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig())
    model.save_pretrained(directory, safe_serialization=True)


def time_torch(directory, batch, runs, dtype_name):
    import torch
    from transformers import CLIPModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"f32": torch.float32, "f16": torch.float16}[dtype_name]
    if device == "cpu" and dtype_name == "f16":
        return None
    model = CLIPModel.from_pretrained(directory, dtype=dtype).to(device).eval()
    size = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, device=device, dtype=dtype)

    def once():
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=pixels)
            features = out if torch.is_tensor(out) else out.pooler_output
            return features.float().cpu()

    for _ in range(3):
        once()
    times = []
    for _ in range(runs):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        once()
        times.append((time.perf_counter() - t) * 1000)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    return statistics.median(times), min(times), name


def time_webclip(binary, directory, image, batch, runs, precision):
    env = dict(os.environ)
    # Where the NVIDIA driver's Vulkan ICD sits on the lent machines, if the loader misses it.
    icd = "/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
    if "VK_DRIVER_FILES" not in env and os.path.exists(icd):
        env["VK_DRIVER_FILES"] = icd
    cmd = [binary, "bench", "--backend", "wgpu", "--precision", precision, "--model", directory,
           image, "--batch", str(batch), "--runs", str(runs), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1:] or ["exit %d" % done.returncode]
    report = json.loads(done.stdout)
    return report, []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--webclip", required=True, help="webclip's native binary, or a .gz of it")
    ap.add_argument("--model", default="/tmp/webclip-gpu-bench/vit-b-32", help="where the random B/32 is written")
    ap.add_argument("--image", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "images", "chelsea.png"))
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=None, help="folder for gpu_bench.md and gpu_bench.json")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    binary = a.webclip
    if binary.endswith(".gz"):
        unpacked = "/tmp/webclip-gpu-bench/webclip"
        os.makedirs(os.path.dirname(unpacked), exist_ok=True)
        with gzip.open(binary, "rb") as src, open(unpacked, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(unpacked, 0o755)
        binary = unpacked

    os.makedirs(a.model, exist_ok=True)
    t = time.perf_counter()
    make_model(a.model, a.seed)
    print("random ViT-B/32 in %s (%.1f s)" % (a.model, time.perf_counter() - t), flush=True)

    rows, raw = [], []
    for batch in [int(b) for b in a.batches.split(",")]:
        for dtype in ["f32", "f16"]:
            r = time_torch(a.model, batch, a.runs, dtype)
            if r:
                med, best, name = r
                rows.append("| PyTorch eager (%s) | %s | %d | %.2f | %.2f | %.2f |" % (name, dtype, batch, med, best, med / batch))
                raw.append({"engine": "torch", "device": name, "dtype": dtype, "batch": batch, "median_ms": med, "best_ms": best})
                print(rows[-1], flush=True)
            report, err = time_webclip(binary, a.model, a.image, batch, a.runs, dtype)
            if report:
                v = report["stages"]["vision"]
                rows.append("| webclip %s | %s | %d | %.2f | %.2f | %.2f |" % (report["backend"], dtype, batch, v["median_ms"], v["min_ms"], v["median_ms"] / batch))
                raw.append({"engine": "webclip", "device": report["backend"], "dtype": dtype, "batch": batch, "median_ms": v["median_ms"], "best_ms": v["min_ms"], "report": report})
            else:
                rows.append("| webclip | %s | %d | failed: %s | | |" % (dtype, batch, " ".join(err)))
            print(rows[-1], flush=True)

    table = "\n".join([
        "Image tower (vision model + projection) of a random-weight ViT-B/32, %d timed runs each, result read back to the host;" % a.runs,
        "webclip's time is its `vision` stage (the preprocessed batch in, embeddings out).",
        "",
        "| engine | dtype | batch | median (ms) | best (ms) | per image (ms) |",
        "|---|---|---|---|---|---|",
    ] + rows)
    print("\n" + table)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "gpu_bench.md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(a.out, "gpu_bench.json"), "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
