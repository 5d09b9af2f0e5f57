"""A Llama-family decoder in one file: RMSNorm, RoPE (rotate-half), GQA attention, SwiGLU,
and an optional Mixture-of-Experts feed-forward block.

MoE routing during training (`moe_mode`):
  "topk"  : softmax router, the k largest probabilities renormalised to sum to 1 (Mixtral);
            Switch load-balancing loss  E * sum_i f_i * P_i.
  "dense" : DS-MoE, every expert computed and weighted by its raw probability p_i;
            mutual-information loss  -H(mean_x p) + mean_x H(p(.|x)).
The block returns its auxiliary loss; the caller scales it (aux_coef).
Names follow Hugging Face so that export is a rename (see hf.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    hidden_size: int = 192
    num_hidden_layers: int = 4
    num_attention_heads: int = 6
    num_key_value_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 512
    max_position_embeddings: int = 256
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    # MoE (num_experts == 0: dense llama)
    num_experts: int = 0
    num_experts_per_tok: int = 2
    moe_mode: str = "topk"  # "topk" | "dense"
    norm_topk_prob: bool = True  # topk: renormalise the chosen probabilities (False: raw p_i, DS-MoE inference)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat([freqs, freqs], dim=-1)  # HF layout: the two halves share frequencies
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class Attention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        c = self.c
        q = self.q_proj(x).view(b, t, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(group, dim=1)  # head h reads kv head h // group (HF repeat_kv)
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim) + mask
        out = scores.softmax(-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class Mlp(nn.Module):
    def __init__(self, d: int, f: int):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoeBlock(nn.Module):
    """E SwiGLU experts stored stacked: w1 (gate) [E,f,d], w3 (up) [E,f,d], w2 (down) [E,d,f]."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        e, d, f = c.num_experts, c.hidden_size, c.intermediate_size
        self.num_experts, self.top_k, self.mode, self.renormalise = e, c.num_experts_per_tok, c.moe_mode, c.norm_topk_prob
        self.gate = nn.Linear(d, e, bias=False)
        self.w1 = nn.Parameter(torch.empty(e, f, d))
        self.w3 = nn.Parameter(torch.empty(e, f, d))
        self.w2 = nn.Parameter(torch.empty(e, d, f))
        for w in (self.w1, self.w3, self.w2):
            nn.init.normal_(w, std=0.02)
        self.last_probs: torch.Tensor | None = None  # [T, E], kept for logging expert load
        self.ablated: set[int] = set()  # experts the router may not choose (measurement only)
        self.last_mi: torch.Tensor | None = None  # mutual-information loss of the last forward (with grad)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = self.gate(x).float()
        if self.ablated:  # as the playground ablates: the expert's logit is -inf before the softmax
            logits[:, sorted(self.ablated)] = float("-inf")
        probs = logits.softmax(-1)  # [T, E]
        self.last_probs = probs.detach()
        if self.mode == "dense":
            # All experts as one wide SwiGLU: weighting h_e by p_e before the down projection
            # gives sum_e p_e * down_e(h_e) in a single matmul.
            e, f = self.w1.shape[:2]
            h = F.silu(x @ self.w1.reshape(e * f, -1).T) * (x @ self.w3.reshape(e * f, -1).T)
            h = (h.view(-1, e, f) * probs.unsqueeze(-1).to(x.dtype)).reshape(-1, e * f)
            out = h @ self.w2.permute(0, 2, 1).reshape(e * f, -1)
            mean_p = probs.mean(0)
            entropy_of_mean = -(mean_p * (mean_p + 1e-9).log()).sum()
            mean_entropy = -(probs * (probs + 1e-9).log()).sum(-1).mean()
            aux = -entropy_of_mean + mean_entropy  # the same value as last_mi below
        else:
            weights, chosen = probs.topk(self.top_k, dim=-1)
            if self.renormalise:
                weights = weights / weights.sum(-1, keepdim=True)
            out = torch.zeros_like(x)
            for e in range(self.num_experts):
                rows, slot = torch.where(chosen == e)
                if rows.numel() == 0:
                    continue
                xe = x[rows]
                ye = F.linear(F.silu(F.linear(xe, self.w1[e])) * F.linear(xe, self.w3[e]), self.w2[e])
                out.index_add_(0, rows, ye * weights[rows, slot].unsqueeze(-1).to(x.dtype))
            # Switch: f_i = share of routed (token, slot) pairs, P_i = mean probability.
            share = F.one_hot(chosen, self.num_experts).float().sum((0, 1)) / chosen.numel()
            aux = self.num_experts * (share * probs.mean(0)).sum()
        # The mutual-information term (DS-MoE's loss; for top-k training an optional extra, TrainConfig.mi_coef):
        # low per-token entropy (routers that decide) with a high entropy of the mean (balanced use).
        mean_p = probs.mean(0)
        self.last_mi = (mean_p * (mean_p + 1e-9).log()).sum() - (probs * (probs + 1e-9).log()).sum(-1).mean()
        return out.reshape(shape), aux


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = Mlp(c.hidden_size, c.intermediate_size) if c.num_experts == 0 else None
        self.block_sparse_moe = MoeBlock(c) if c.num_experts > 0 else None

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        if self.mlp is not None:
            return x + self.mlp(h), x.new_zeros(())
        y, aux = self.block_sparse_moe(h)
        return x + y, aux


class Transformer(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.config = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = None if c.tie_word_embeddings else nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        cos, sin = rope_tables(c.head_dim, c.max_position_embeddings, c.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        # GPT-2 style: shrink the residual-branch outputs with depth.
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight", ".w2")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * c.num_hidden_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns logits [B, T, V] and the summed auxiliary router loss (0 for dense)."""
        t = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        aux = x.new_zeros(())
        for layer in self.layers:
            x, layer_aux = layer(x, cos, sin, mask)
            aux = aux + layer_aux
        x = self.norm(x)
        logits = x @ self.embed_tokens.weight.T if self.lm_head is None else self.lm_head(x)
        return logits, aux

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(self, ids: list[int], max_new: int, temperature: float = 0.8, top_k: int = 40,
                 generator: torch.Generator | None = None) -> list[int]:
        out = list(ids)
        for _ in range(max_new):
            ctx = torch.tensor([out[-self.config.max_position_embeddings:]])
            logits = self(ctx)[0][0, -1] / max(temperature, 1e-5)
            v, _ = logits.topk(top_k)
            logits[logits < v[-1]] = float("-inf")
            out.append(int(torch.multinomial(logits.softmax(-1), 1, generator=generator)))
        return out
