#!/usr/bin/python3
"""The PyTorch eager baseline for `moe bench`: a plain decode loop as a researcher would write it (Debian's torch,
batch 1, KV cache, f32 compute, torch.set_num_threads(THREADS)), on the same checkpoint the engine runs.

usage: torch_decode.py MODEL_DIR --prompt 1,2,3 --decode N --modes dense,topk:2 --min-seconds S [--threads 1] [--serve]
prints one JSON object: {"torch": version, "threads": n, "dtype": "float32", "results": [{"routing", "prefillTokensPerSecond",
"decodeTokensPerSecond", "tokens": greedy ids of the first run}]}
Llama / Mistral (dense MLP) and Mixtral (softmax router, top-k renormalised unless config.json says norm_topk_prob: false;
dense = every expert weighted by p).
Sharded checkpoints (model.safetensors.index.json) are read too.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch

DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'))
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=torch.int16).view(DTYPES[info['dtype']]) if info['dtype'] != 'F32' else torch.frombuffer(raw, dtype=torch.float32)
        out[name] = t.reshape(info['shape']).to(torch.float32)
    return out


def load(model_dir):
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    index = os.path.join(model_dir, 'model.safetensors.index.json')
    W = {}
    if os.path.exists(index):
        for shard in sorted(set(json.load(open(index))['weight_map'].values())):
            W.update(read_safetensors(os.path.join(model_dir, shard)))
    else:
        W = read_safetensors(os.path.join(model_dir, 'model.safetensors'))
    return cfg, W


class Model:
    def __init__(self, cfg, W):
        self.cfg = cfg
        self.d = cfg['hidden_size']
        self.h = cfg['num_attention_heads']
        self.kv = cfg.get('num_key_value_heads') or self.h
        self.hd = cfg.get('head_dim') or self.d // self.h
        self.eps = cfg['rms_norm_eps']
        self.L = cfg['num_hidden_layers']
        self.E = cfg.get('num_local_experts', 0)
        self.topk = cfg.get('num_experts_per_tok', 0)
        # Mixtral renormalises the chosen experts' probabilities; a config may say otherwise (ds-moe: raw probabilities).
        self.renorm = bool(cfg.get('norm_topk_prob', True))
        self.embed = W['model.embed_tokens.weight']
        self.lm_head = self.embed if cfg.get('tie_word_embeddings') or 'lm_head.weight' not in W else W['lm_head.weight']
        self.norm = W['model.norm.weight']
        self.layers = []
        for l in range(self.L):
            p = f'model.layers.{l}'
            layer = {
                'in': W[f'{p}.input_layernorm.weight'], 'post': W[f'{p}.post_attention_layernorm.weight'],
                # q, k, v fused into one matrix: one matmul per token, as an efficient eager model would do.
                'qkv': torch.cat([W[f'{p}.self_attn.{n}_proj.weight'] for n in 'qkv']), 'o': W[f'{p}.self_attn.o_proj.weight'],
            }
            block = next((b for b in ('block_sparse_moe', 'mlp') if f'{p}.{b}.gate.weight' in W), None)
            if block:
                layer['router'] = W[f'{p}.{block}.gate.weight']
                layer['experts'] = [(W[f'{p}.{block}.experts.{e}.w1.weight'], W[f'{p}.{block}.experts.{e}.w3.weight'], W[f'{p}.{block}.experts.{e}.w2.weight']) for e in range(self.E)]
            else:
                layer['mlp'] = (W[f'{p}.mlp.gate_proj.weight'], W[f'{p}.mlp.up_proj.weight'], W[f'{p}.mlp.down_proj.weight'])
            self.layers.append(layer)
        theta = cfg.get('rope_theta', 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))

    def new_cache(self, capacity):
        return [(torch.zeros(self.kv, capacity, self.hd), torch.zeros(self.kv, capacity, self.hd)) for _ in range(self.L)], 0

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x, pos):  # x [T, heads, hd]
        ang = pos[:, None].float() * self.inv_freq[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
        half = self.hd // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    @staticmethod
    def ffn(x, w):
        g, u, dn = w
        return torch.nn.functional.linear(torch.nn.functional.silu(torch.nn.functional.linear(x, g)) * torch.nn.functional.linear(x, u), dn)

    def forward(self, tokens, cache, start, mode):
        T = len(tokens)
        x = self.embed[torch.tensor(tokens)]
        pos = torch.arange(start, start + T)
        qd, kvd = self.h * self.hd, self.kv * self.hd
        for l, layer in enumerate(self.layers):
            h = self.rms(x, layer['in'])
            qkv = torch.nn.functional.linear(h, layer['qkv'])
            q = self.rope(qkv[:, :qd].view(T, self.h, self.hd), pos)
            k = self.rope(qkv[:, qd:qd + kvd].view(T, self.kv, self.hd), pos)
            v = qkv[:, qd + kvd:].view(T, self.kv, self.hd)
            K, V = cache[l]
            K[:, start:start + T] = k.transpose(0, 1)
            V[:, start:start + T] = v.transpose(0, 1)
            keys = K[:, :start + T].repeat_interleave(self.h // self.kv, 0)
            vals = V[:, :start + T].repeat_interleave(self.h // self.kv, 0)
            scores = torch.matmul(q.transpose(0, 1), keys.transpose(1, 2)) / (self.hd ** 0.5)
            if T > 1:
                mask = torch.full((T, start + T), float('-inf')).triu(start + 1)
                scores = scores + mask
            attn = torch.matmul(scores.softmax(-1), vals).transpose(0, 1).reshape(T, qd)
            x = x + torch.nn.functional.linear(attn, layer['o'])
            h = self.rms(x, layer['post'])
            if 'mlp' in layer:
                x = x + self.ffn(h, layer['mlp'])
                continue
            probs = torch.nn.functional.linear(h, layer['router']).softmax(-1)
            if mode == 'dense':
                weights, chosen = probs, None
            else:
                weights, chosen = probs.topk(self.topk if mode == 'native' else int(mode.split(':')[1]), -1)
                if self.renorm:
                    weights = weights / weights.sum(-1, keepdim=True)
            out = torch.zeros_like(h)
            if chosen is None:
                for e, w in enumerate(layer['experts']):
                    out += weights[:, e:e + 1] * self.ffn(h, w)
            else:
                # The Hugging Face Mixtral loop: each expert runs on the tokens that chose it.
                for e in chosen.unique().tolist():
                    rows, slot = (chosen == e).nonzero(as_tuple=True)
                    out.index_add_(0, rows, weights[rows, slot][:, None] * self.ffn(h[rows], layer['experts'][e]))
            x = x + out
        return torch.nn.functional.linear(self.rms(x[-1:], self.norm), self.lm_head)[0]


def run(model, prompt, decode, mode):
    cache, _ = model.new_cache(len(prompt) + decode)
    t0 = time.perf_counter()
    logits = model.forward(prompt, cache, 0, mode)
    prefill = time.perf_counter() - t0
    tokens, pos, dec = [], len(prompt), 0.0
    for _ in range(decode):
        nxt = int(logits.argmax())
        tokens.append(nxt)
        t0 = time.perf_counter()
        logits = model.forward([nxt], cache, pos, mode)
        dec += time.perf_counter() - t0
        pos += 1
    return prefill, dec, tokens


def measure(model, prompt, decode, mode, min_seconds):
    run(model, prompt, decode, mode)  # warm-up
    pre, dec, tokens = run(model, prompt, decode, mode)
    rounds = 1
    while dec < min_seconds and rounds < 1000:
        p2, d2, _ = run(model, prompt, decode, mode)
        pre += p2
        dec += d2
        rounds += 1
    return {'routing': mode, 'prefillTokensPerSecond': rounds * len(prompt) / pre,
            'decodeTokensPerSecond': rounds * decode / dec, 'tokens': tokens}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('--prompt', required=True)
    ap.add_argument('--decode', type=int, default=8)
    ap.add_argument('--modes', default='dense,topk:2')
    ap.add_argument('--min-seconds', type=float, default=1.0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--serve', action='store_true',
                    help='load once, then answer one JSON line per request line {"mode", "minSeconds"} on stdin')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, W = load(a.model)
    model = Model(cfg, W)
    del W
    prompt = [int(t) for t in a.prompt.split(',')]
    header = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'dtype': 'float32'}
    with torch.inference_mode():
        if a.serve:
            # The bench interleaves these runs with the engine's, so both see the same machine load.
            print(json.dumps(header), flush=True)
            for line in sys.stdin:
                req = json.loads(line)
                print(json.dumps(measure(model, prompt, a.decode, req['mode'], req['minSeconds'])), flush=True)
            return
        results = [measure(model, prompt, a.decode, mode, a.min_seconds) for mode in a.modes.split(',')]
    print(json.dumps({**header, 'results': results}))


if __name__ == '__main__':
    main()
