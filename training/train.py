"""The training loop: AdamW, warmup + cosine LR, seeded batches, per-domain eval, checkpoint + resume.

A run lives in one folder:
    ckpt.pt     model + optimiser + step (written to ckpt.pt.tmp, then renamed: never half-written)
    log.jsonl   one JSON object per logged step / eval
    done.json   written when the run finished (a finished run is skipped)
Interrupt it at any time; calling train() again with the same folder resumes from ckpt.pt.
Batches depend only on (seed, step), so a resumed run sees the same data as an uninterrupted one.

Under `torchrun` (several processes, PyTorch DDP over gloo on CPU or NCCL on GPUs) each process
computes the rows r, r + W, r + 2W, ... of the same global batch and DDP averages the gradients, so W
processes train the same model on the same data as one process (up to float rounding); rank 0
evaluates, logs and writes the checkpoint, every rank resumes from it.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from model import Transformer


@dataclass
class TrainConfig:
    steps: int
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    aux_coef: float = 0.0  # topk: ~1e-2 (Switch); dense (DS-MoE): ~5e-4 (mutual information)
    router_lr_mult: float = 1.0  # the routers' learning rate is lr * this (and they get no weight decay)
    mi_coef: float = 0.0  # top-k training: add mi_coef * the mutual-information loss (routers that decide)
    seed: int = 1234
    threads: int = 1
    log_every: int = 20
    eval_every: int = 250
    eval_windows: int = 16  # per domain
    ckpt_every: int = 100


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless running under torchrun with an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    progress = min(1.0, (step - tc.warmup) / max(1, tc.steps - tc.warmup))
    return tc.lr * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def sample_batch(train: dict[str, np.ndarray], tc: TrainConfig, step: int) -> torch.Tensor:
    """Each row: a domain chosen uniformly (so small domains are not drowned), then a random window."""
    rng = np.random.default_rng([tc.seed, step])
    domains = sorted(train)
    rows = []
    for _ in range(tc.batch_size):
        tokens = train[domains[rng.integers(len(domains))]]
        start = rng.integers(0, len(tokens) - tc.seq_len - 1)
        rows.append(tokens[start:start + tc.seq_len + 1])
    return torch.from_numpy(np.stack(rows).astype(np.int64))


@torch.no_grad()
def evaluate(model: Transformer, heldout: dict[str, np.ndarray], tc: TrainConfig) -> dict:
    """Mean next-token loss per held-out domain; for MoE models also each layer's first-choice expert shares."""
    model.eval()
    result: dict = {"loss": {}, "expert_share": {}}
    for domain in sorted(heldout):
        tokens = heldout[domain]
        n = min(tc.eval_windows, (len(tokens) - 1) // tc.seq_len)
        batch = torch.from_numpy(np.stack([tokens[i * tc.seq_len:(i + 1) * tc.seq_len + 1] for i in range(n)]).astype(np.int64))
        logits, _ = model(batch[:, :-1])
        result["loss"][domain] = round(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).item(), 4)
        shares = []
        for layer in model.layers:
            if layer.block_sparse_moe is not None:
                first = layer.block_sparse_moe.last_probs.argmax(-1)
                counts = torch.bincount(first, minlength=layer.block_sparse_moe.num_experts).float()
                shares.append([round(x, 3) for x in (counts / counts.sum()).tolist()])
        if shares:
            result["expert_share"][domain] = shares
    model.train()
    return result


def train(run_dir: Path, make_model: Callable[[], Transformer], tc: TrainConfig,
          train_data: dict[str, np.ndarray], heldout: dict[str, np.ndarray], stop_at: int | None = None) -> Transformer:
    """Train (or resume) the run in run_dir. stop_at: return after that step as if interrupted (for tests)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    model = make_model()
    rank, world_size = world()
    is_router = lambda n: n.endswith("block_sparse_moe.gate.weight")  # noqa: E731
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not is_router(n)]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    routers = [p for n, p in model.named_parameters() if is_router(n)]
    groups = [{"params": decay, "weight_decay": tc.weight_decay, "lr_mult": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0}]
    if routers:
        groups.append({"params": routers, "weight_decay": 0.0, "lr_mult": tc.router_lr_mult})
    opt = torch.optim.AdamW(groups, lr=tc.lr, betas=(0.9, 0.95))
    ckpt_path = run_dir / "ckpt.pt"
    step = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        if rank == 0:
            print(f"train: resuming {run_dir.name} from step {step}", flush=True)
    if (run_dir / "done.json").exists():
        return model
    # DDP: same initial weights everywhere (rank 0's), gradients averaged across processes.
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=model.config.num_experts > 0) \
        if world_size > 1 else model

    def save() -> None:
        if rank != 0:
            return
        tmp = run_dir / "ckpt.pt.tmp"
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "train_config": asdict(tc), "model_config": model.config.to_dict()}, tmp)
        os.replace(tmp, ckpt_path)

    n_moe = sum(1 for layer in model.layers if layer.block_sparse_moe is not None)
    log = open(run_dir / "log.jsonl", "a") if rank == 0 else open(os.devnull, "w")
    if step == 0 and rank == 0:
        log.write(json.dumps({"start": True, "params": model.num_params(), "train_config": asdict(tc),
                              "model_config": model.config.to_dict()}) + "\n")
        log.write(json.dumps({"step": 0, "eval": evaluate(model, heldout, tc)}) + "\n")
    t0, lm_sum, aux_sum, count = time.time(), 0.0, 0.0, 0
    model.train()
    while step < tc.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc) * group.get("lr_mult", 1.0)
        batch = sample_batch(train_data, tc, step)[rank::world_size]
        logits, aux = net(batch[:, :-1])
        lm_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        aux = aux / max(1, n_moe)
        loss = lm_loss + tc.aux_coef * aux
        if tc.mi_coef:
            loss = loss + tc.mi_coef * sum(layer.block_sparse_moe.last_mi for layer in model.layers
                                           if layer.block_sparse_moe is not None) / max(1, n_moe)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        step += 1
        if world_size > 1:  # log the global batch's loss, as one process would
            summed = torch.tensor([lm_loss.item(), float(aux)])
            dist.all_reduce(summed)
            lm_loss, aux = summed[0] / world_size, summed[1] / world_size
        lm_sum, aux_sum, count = lm_sum + float(lm_loss), aux_sum + float(aux), count + 1
        if step % tc.log_every == 0 or step == tc.steps:
            entry = {"step": step, "lr": round(lr_at(step - 1, tc), 7), "loss": round(lm_sum / count, 4),
                     "aux": round(aux_sum / count, 4), "sec_per_step": round((time.time() - t0) / count, 3)}
            log.write(json.dumps(entry) + "\n")
            log.flush()
            if rank == 0:
                print(f"train {run_dir.name}: {entry}", flush=True)
            t0, lm_sum, aux_sum, count = time.time(), 0.0, 0.0, 0
        if (step % tc.eval_every == 0 or step == tc.steps) and rank == 0:
            ev = evaluate(model, heldout, tc)
            log.write(json.dumps({"step": step, "eval": ev}) + "\n")
            log.flush()
            print(f"eval {run_dir.name} step {step}: {ev['loss']}", flush=True)
        if step % tc.ckpt_every == 0 or step == tc.steps:
            save()
        if step == stop_at:
            log.close()
            return model
    log.close()
    if rank == 0:
        (run_dir / "done.json").write_text(json.dumps({"step": step, "eval": evaluate(model, heldout, tc)}) + "\n")
    if world_size > 1:
        dist.barrier()
    return model
