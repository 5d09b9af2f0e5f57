"""Quick PyTorch measurements of a model on the shipped eval texts (public/eval), for choosing
hyperparameters between runs; the model cards (training/cards.ts) measure the exported models with
the playground's engine.

    /usr/bin/python3 training/measure.py public/models/moe-top2 [--mode topk|dense] [--ablation]
    /usr/bin/python3 training/measure.py training/runs/moe-top2/ckpt.pt      (a run in progress)

Reports: held-out loss per domain (first 512 tokens of each text, windows of 256, as the cards),
per MoE layer the expert distance (mean over experts of |W_e - mean W| / |mean W| on the gate
projection), the router entropy on the eval texts (nats; uniform = ln E), and with --ablation the
largest effect of ablating the expert a domain uses most at a layer.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bpe  # noqa: E402
import hf  # noqa: E402
from model import Transformer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOMAINS = ["english", "german", "python", "arithmetic"]


def eval_tokens(max_tokens: int = 512) -> dict[str, list[int]]:
    enc = bpe.Encoder.load(REPO / "training/tokenizer")
    return {d: enc.encode((REPO / "public/eval" / f"{d}.txt").read_text("utf-8"))[:max_tokens] for d in DOMAINS}


@torch.no_grad()
def losses_and_probs(model: Transformer, texts: dict[str, list[int]], window: int = 256):
    """Loss per domain; router probabilities per MoE layer and domain ([T, E])."""
    losses, probs = {}, {}
    for d, toks in texts.items():
        total, count, per_layer = 0.0, 0, []
        for start in range(0, len(toks), window):
            chunk = torch.tensor([toks[start:start + window]])
            if chunk.shape[1] < 2:
                continue
            logits, _ = model(chunk)
            total += F.cross_entropy(logits[0, :-1], chunk[0, 1:], reduction="sum").item()
            count += chunk.shape[1] - 1
            per_layer.append([layer.block_sparse_moe.last_probs for layer in model.layers if layer.block_sparse_moe])
        losses[d] = total / count
        probs[d] = [torch.cat([w[m] for w in per_layer]) for m in range(len(per_layer[0]))] if per_layer and per_layer[0] else []
    return losses, probs


def expert_distance(model: Transformer) -> list[float]:
    out = []
    for layer in model.layers:
        if layer.block_sparse_moe is None:
            continue
        w = layer.block_sparse_moe.w1.detach().float()
        mean = w.mean(0)
        out.append(((w - mean).flatten(1).norm(dim=1) / mean.norm()).mean().item())
    return out


def router_entropy(probs: dict[str, list[torch.Tensor]]) -> list[float]:
    layers = len(next(iter(probs.values())))
    out = []
    for m in range(layers):
        p = torch.cat([probs[d][m] for d in probs])
        out.append((-(p * (p + 1e-12).log()).sum(-1)).mean().item())
    return out


@torch.no_grad()
def ablation(model: Transformer, texts, base: dict[str, float], probs) -> dict:
    """For every MoE layer and domain: ablate the expert the domain routes to most (first choice);
    effect = the domain's loss increase / the mean increase of the other domains."""
    moe_layers = [layer.block_sparse_moe for layer in model.layers if layer.block_sparse_moe]
    best = None
    rows = []
    for m, block in enumerate(moe_layers):
        for d in DOMAINS:
            top = int(torch.bincount(probs[d][m].argmax(-1), minlength=block.num_experts).argmax())
            block.ablated = {top}
            lo, _ = losses_and_probs(model, texts)
            block.ablated = set()
            rise = {k: lo[k] - base[k] for k in DOMAINS}
            others = sum(rise[k] for k in DOMAINS if k != d) / (len(DOMAINS) - 1)
            ratio = rise[d] / others if others > 1e-9 else math.inf
            row = {"layer": m, "domain": d, "expert": top, "rise": round(rise[d], 4), "others": round(others, 4),
                   "ratio": round(ratio, 2)}
            rows.append(row)
            if rise[d] > 0.02 and (best is None or ratio > best["ratio"]):
                best = row
    return {"best": best, "rows": rows}


def measure(model: Transformer, with_ablation: bool = False) -> dict:
    model.eval()
    texts = eval_tokens()
    losses, probs = losses_and_probs(model, texts)
    result = {"loss": {d: round(v, 4) for d, v in losses.items()}, "mean": round(sum(losses.values()) / 4, 4)}
    if model.config.num_experts:
        result["distance"] = [round(x, 3) for x in expert_distance(model)]
        result["entropy"] = [round(x, 3) for x in router_entropy(probs)]
        result["entropy_limit"] = round(0.7 * math.log(model.config.num_experts), 3)
        if with_ablation:
            result["ablation"] = ablation(model, texts, losses, probs)["best"]
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--mode", default="topk")
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.folder.suffix == ".pt":  # a training checkpoint (training/runs/<stage>/ckpt.pt), e.g. mid-run
        from model import ModelConfig
        ckpt = torch.load(a.folder)
        model = Transformer(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        for layer in model.layers:
            if layer.block_sparse_moe is not None:
                layer.block_sparse_moe.mode = a.mode
        print(json.dumps({"step": ckpt["step"]} | measure(model, a.ablation)))
    else:
        print(json.dumps(measure(hf.load_folder(a.folder, a.mode), a.ablation)))
