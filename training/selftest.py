"""Checks of the foundry that need PyTorch (run by tests/unit/tokenizer-agreement.smoke.test.ts):

    /usr/bin/python3 training/selftest.py SMOKE_WORK_DIR

1. Resume is exact: a top-2 MoE run interrupted after a checkpoint and resumed ends with the same
   weights as an uninterrupted run.
2. The MoE block's two routing modes agree with a direct per-token computation.
3. The corpus: the base English fortunes never read the second extra round's files (the held-out split and
   public/eval must not move when those packages are installed); man pages read as plain text; a document
   that shares a paragraph with public/eval is passed over.
"""
from __future__ import annotations

import gzip
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
from model import ModelConfig, MoeBlock, Transformer  # noqa: E402
from train import TrainConfig, train  # noqa: E402

DOMAINS = ["english", "german", "python", "arithmetic"]


def check_resume(tokens_dir: Path) -> None:
    data = {d: np.load(tokens_dir / f"{d}.train.npy") for d in DOMAINS}
    held = {d: np.load(tokens_dir / f"{d}.heldout.npy") for d in DOMAINS}
    c = ModelConfig(vocab_size=512, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                    head_dim=16, intermediate_size=64, max_position_embeddings=32, num_experts=4)
    tc = TrainConfig(steps=12, batch_size=4, seq_len=32, warmup=3, aux_coef=1e-2, router_lr_mult=10.0, log_every=4, eval_every=100,
                     eval_windows=2, ckpt_every=4)
    with tempfile.TemporaryDirectory() as tmp:
        whole = train(Path(tmp) / "whole", lambda: Transformer(c), tc, data, held)
        train(Path(tmp) / "parts", lambda: Transformer(c), tc, data, held, stop_at=6)  # ckpt at 4; 5-6 are lost
        resumed = train(Path(tmp) / "parts", lambda: Transformer(c), tc, data, held)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"resume: {name} differs from the uninterrupted run"


@torch.no_grad()
def check_moe_modes() -> None:
    torch.manual_seed(0)
    c = ModelConfig(hidden_size=16, intermediate_size=8, num_experts=4, num_experts_per_tok=2)
    block = MoeBlock(c)
    x = torch.randn(5, 16)

    def expert(e: int, v: torch.Tensor) -> torch.Tensor:
        return F.linear(F.silu(F.linear(v, block.w1[e])) * F.linear(v, block.w3[e]), block.w2[e])

    for mode, renorm in (("topk", True), ("topk", False), ("dense", True)):
        block.mode, block.renormalise = mode, renorm
        out, _ = block(x)
        for t in range(5):
            p = (block.gate.weight @ x[t]).softmax(-1)
            chosen = range(4) if mode == "dense" else p.topk(2).indices.tolist()
            scale = p[list(chosen)].sum() if mode == "topk" and renorm else 1.0
            want = sum(p[e] / scale * expert(e, x[t]) for e in chosen)
            assert torch.allclose(out[t], want, atol=1e-6), f"MoE block ({mode}, renormalise={renorm}) token {t}"


def check_corpus() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "fortunes").write_text("A base fortune, long enough.\n%\nAnother base fortune here.\n")
        (folder / "anarchism").write_text("An extra-round quotation, long enough.\n")
        (folder / "mario.geral").write_text("Uma frase em portugues, longa o bastante.\n")
        base = corpus.fortune_docs(folder)
        assert base == ["A base fortune, long enough.", "Another base fortune here."], base
        assert corpus.fortune_docs(folder, corpus.EXTRA2_FORTUNE_FILES) == ["An extra-round quotation, long enough."]
        page = folder / "ls.1.gz"
        page.write_bytes(gzip.compress(b'.TH LS 1\n.SH BESCHREIBUNG\n\\fBls\\fP listet \\fI\\,DATEIen\\/\\fP auf \\-\\- kurz.\n'))
        assert corpus.man_text(page) == "BESCHREIBUNG\nls listet DATEIen auf -- kurz.", repr(corpus.man_text(page))
        ev = folder / "eval.txt"
        ev.write_text("short\n\n" + "x" * 70 + "\n")
        assert corpus.within(["a" * 10, "b " + "x" * 70, "c" * 10, "d"], 15, corpus.eval_paragraphs(ev)) == ["a" * 10, "c" * 10]


if __name__ == "__main__":
    check_corpus()
    check_moe_modes()
    check_resume(Path(sys.argv[1]) / "work" / "tokens")
    print("selftest: ok")
