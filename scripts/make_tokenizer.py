"""Build webclip's built-in src/tokenizer.json from CLIP's BPE vocabulary.

The vocabulary is OpenAI's MIT-licensed `bpe_simple_vocab_16e6.txt.gz`, which the
`open_clip_torch` wheel on PyPI ships. We derive `vocab.json` + `merges.txt` exactly as CLIP's
`simple_tokenizer.py` builds its encoder, let transformers' CLIPTokenizer turn them into a fast
tokenizer, and save its `tokenizer.json` (the file every Hugging Face CLIP repo carries).

Run by hand (needs `pip install transformers open_clip_torch`):
    python scripts/make_tokenizer.py src/tokenizer.json
"""

import gzip
import hashlib
import importlib.resources
import json
import sys
import tempfile
from pathlib import Path

from transformers import CLIPTokenizer


def bytes_to_unicode():
    # CLIP's reversible byte -> printable-unicode table (simple_tokenizer.py).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def main(out: str) -> None:
    raw = (importlib.resources.files("open_clip") / "bpe_simple_vocab_16e6.txt.gz").read_bytes()
    print("bpe_simple_vocab_16e6.txt.gz sha256", hashlib.sha256(raw).hexdigest())
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
        (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        # transformers 5 ignores vocab_file=/merges_file= arguments: load from the directory.
        tok = CLIPTokenizer.from_pretrained(str(tmp), model_max_length=77, pad_token="<|endoftext|>")
        ids = tok("a photo of a cat")["input_ids"]
        assert ids == [49406, 320, 1125, 539, 320, 2368, 49407], ids
        tok.save_pretrained(str(tmp / "out"))
        data = json.loads((tmp / "out" / "tokenizer.json").read_text())
    # Truncation and padding are per-call settings; webclip sets them itself.
    data["truncation"] = None
    data["padding"] = None
    Path(out).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "src/tokenizer.json")
