"""Hugging Face checkpoint folders <-> model.py: safetensors I/O, llama/mixtral names, config.json.

Written by hand (no safetensors/transformers packages on Debian): an 8-byte little-endian header
length, a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian bytes.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import torch

from model import ModelConfig, Transformer

_NP = {"F32": "<f4", "F16": "<f2"}  # little-endian numpy dtypes


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], dtype: str = "F16") -> None:
    header: dict = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().float().cpu().numpy().astype(_NP[dtype])
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # keep the data 8-byte aligned
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = raw[base + begin:base + end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif info["dtype"] in _NP:
            arr = np.frombuffer(chunk, dtype=_NP[info["dtype"]]).astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, expected F32, F16 or BF16")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def read_folder_tensors(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        tensors: dict[str, torch.Tensor] = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            tensors.update(read_safetensors(folder / shard))
        return tensors
    return read_safetensors(folder / "model.safetensors")


def hf_config(c: ModelConfig, norm_topk_prob: bool) -> dict:
    config = {
        "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads, "head_dim": c.head_dim,
        "max_position_embeddings": c.max_position_embeddings, "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta, "tie_word_embeddings": c.tie_word_embeddings, "hidden_act": "silu",
        "attention_bias": False, "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float16",
    }
    if c.num_experts == 0:
        config.update({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "mlp_bias": False})
    else:
        config.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                       "num_local_experts": c.num_experts, "num_experts_per_tok": c.num_experts_per_tok,
                       "sliding_window": None, "router_aux_loss_coef": 0.01, "output_router_logits": False})
        if not norm_topk_prob:
            # DS-MoE: sparse inference weights experts by their raw probabilities (our loader honours this key).
            config["norm_topk_prob"] = False
    return config


def config_from_hf(config: dict, folder: Path) -> ModelConfig:
    kind = config.get("model_type")
    if kind not in ("llama", "mistral", "mixtral"):
        raise ValueError(f"{folder / 'config.json'}: model_type {kind!r} is not llama, mistral or mixtral")
    heads = config["num_attention_heads"]
    return ModelConfig(
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"], num_attention_heads=heads,
        num_key_value_heads=config.get("num_key_value_heads", heads),
        head_dim=config.get("head_dim") or config["hidden_size"] // heads,
        intermediate_size=config["intermediate_size"],
        max_position_embeddings=config.get("max_position_embeddings", 256),
        rms_norm_eps=config.get("rms_norm_eps", 1e-5), rope_theta=config.get("rope_theta", 10000.0),
        tie_word_embeddings=config.get("tie_word_embeddings", False),
        num_experts=config.get("num_local_experts", 0) if kind == "mixtral" else 0,
        num_experts_per_tok=config.get("num_experts_per_tok", 2),
        norm_topk_prob=config.get("norm_topk_prob", True),
    )


def to_hf_tensors(model: Transformer) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, p in model.state_dict().items():
        if name.startswith("rope_"):
            continue
        if ".block_sparse_moe.w" in name:  # stacked [E, ...] -> experts.e.wN.weight
            prefix, w = name.rsplit(".", 1)
            for e in range(p.shape[0]):
                out[f"model.{prefix}.experts.{e}.{w}.weight"] = p[e]
        elif name.startswith("lm_head"):
            out[name] = p
        else:
            out["model." + name] = p
    return out


def from_hf_tensors(model: Transformer, tensors: dict[str, torch.Tensor], folder: Path) -> None:
    c = model.config
    state: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name == "lm_head.weight":
            if not c.tie_word_embeddings:
                state[name] = t
            continue
        if not name.startswith("model."):
            raise ValueError(f"{folder}: unexpected tensor {name}")
        state[name[len("model."):]] = t
    for i in range(c.num_hidden_layers if c.num_experts else 0):
        prefix = f"layers.{i}.block_sparse_moe"
        for w in ("w1", "w2", "w3"):
            parts = [state.pop(f"{prefix}.experts.{e}.{w}.weight") for e in range(c.num_experts)]
            state[f"{prefix}.{w}"] = torch.stack(parts)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.startswith("rope_")]
    if missing or unexpected:
        raise ValueError(f"{folder}: tensors do not match the config (missing {missing[:4]}, unexpected {unexpected[:4]})")


def export_folder(model: Transformer, folder: Path, tokenizer_dir: Path, norm_topk_prob: bool = True) -> None:
    # DS-MoE trains densely but is served sparsely with raw probabilities: the caller says which.
    """Write config.json + model.safetensors (f16) + tokenizer files: a Hugging Face folder."""
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", to_hf_tensors(model), "F16")
    (folder / "config.json").write_text(json.dumps(hf_config(model.config, norm_topk_prob), indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tokenizer_dir / name).read_bytes())


def load_folder(folder: Path, moe_mode: str = "topk") -> Transformer:
    """Load a llama or mixtral folder (e.g. the output of `moe upcycle`) into model.py."""
    config = json.loads((folder / "config.json").read_text())
    c = config_from_hf(config, folder)
    c.moe_mode = moe_mode
    model = Transformer(c)
    from_hf_tensors(model, read_folder_tensors(folder), folder)
    return model
