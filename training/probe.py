"""A short training run of an MoE child with chosen hyperparameters, then training/measure.py on it:
for choosing the children's recipe before committing a long run.

    /usr/bin/python3 training/probe.py UPCYCLED_DIR RUN_DIR --steps 300 --lr 4e-4 --router-lr-mult 10 \\
        --aux 1e-2 [--mode topk|dense] [--scratch]

Trains on the foundry's token files (training/work/tokens: the corpus and its extra text) with the
full plan's batch (8 x 256). --scratch re-initialises every weight (a from-scratch MoE of the same shape).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf  # noqa: E402
import measure  # noqa: E402
from model import Transformer  # noqa: E402
from train import TrainConfig, train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def token_data(tokens_dir: Path) -> tuple[dict, dict]:
    train_data, heldout = {}, {}
    for d in measure.DOMAINS:
        parts = [np.load(tokens_dir / f"{d}.train.npy")]
        if (tokens_dir / f"{d}.extra.npy").exists():
            parts += [np.zeros(1, np.uint16), np.load(tokens_dir / f"{d}.extra.npy")]
        train_data[d] = np.concatenate(parts)
        heldout[d] = np.load(tokens_dir / f"{d}.heldout.npy")
    return train_data, heldout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("start", type=Path)
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--router-lr-mult", type=float, default=1.0)
    ap.add_argument("--aux", type=float, default=1e-2)
    ap.add_argument("--mode", default="topk")
    ap.add_argument("--scratch", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    train_data, heldout = token_data(REPO / "training/work/tokens")
    tc = TrainConfig(steps=a.steps, batch_size=8, seq_len=256, lr=a.lr, warmup=min(50, a.steps // 10),
                     min_lr_ratio=0.01, aux_coef=a.aux, router_lr_mult=a.router_lr_mult, threads=a.threads,
                     eval_every=10**9, eval_windows=4)

    def make() -> Transformer:
        model = hf.load_folder(a.start, a.mode)
        return Transformer(model.config) if a.scratch else model

    t0 = time.time()
    model = train(a.run, make, tc, train_data, heldout)
    result = {"run": str(a.run), "args": vars(a) | {"start": str(a.start), "run": str(a.run)},
              "seconds": round(time.time() - t0)}
    model.config.moe_mode = "topk"
    for layer in model.layers:
        if layer.block_sparse_moe is not None:
            layer.block_sparse_moe.mode = "topk"
    result |= measure.measure(model, with_ablation=True)
    if a.mode == "dense":  # DS-MoE: also the dense loss and raw-probability top-k
        for layer in model.layers:
            if layer.block_sparse_moe is not None:
                layer.block_sparse_moe.renormalise = False
        result["raw_top2"] = measure.measure(model)["mean"]
        for layer in model.layers:
            if layer.block_sparse_moe is not None:
                layer.block_sparse_moe.mode = "dense"
        result["dense"] = measure.measure(model)["mean"]
    line = json.dumps(result)
    print(line, flush=True)
    with open(a.run.parent / "probes.jsonl", "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
