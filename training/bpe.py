"""Byte-level BPE: train on the corpus, encode text, write a Hugging Face tokenizer.json.

The pre-tokeniser is the GPT-2 pattern that the ByteLevel pre-tokenizer of Hugging Face
tokenizers applies with `use_regex: true`; bytes map to printable characters with the
GPT-2 byte-to-unicode table. So `encode` here and the app's tokenizer give the same ids.

Ids: 0 = <|endoftext|>, 1..256 = the 256 single bytes (in byte order), then one id per merge.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import regex  # Debian: python3-regex (needed for \p{L} / \p{N})

EOT = "<|endoftext|>"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_PATTERN)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable bytes map to themselves, the rest to code points from 256 up."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pre_tokenize(text: str) -> list[str]:
    """Split like the ByteLevel pre-tokenizer and map each piece's UTF-8 bytes to characters."""
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in _SPLIT.findall(text)]


def train_bpe(texts: list[str], vocab_size: int, log_every: int = 500) -> list[tuple[str, str]]:
    """Learn vocab_size - 257 merges. Incremental pair counts keep this fast in pure Python."""
    word_counts: Counter[str] = Counter()
    for text in texts:
        for doc in text.split(EOT):
            word_counts.update(pre_tokenize(doc))
    words = [list(w) for w in word_counts]
    freqs = [word_counts[w] for w in word_counts]

    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    pair_words: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += freqs[i]
            pair_words[pair].add(i)

    merges: list[tuple[str, str]] = []
    n_merges = vocab_size - 257
    while len(merges) < n_merges and pair_counts:
        # Highest count wins; ties broken by the pair itself so training is deterministic.
        best = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pair_counts[best] < 2:
            break
        merges.append(best)
        merged = best[0] + best[1]
        for i in list(pair_words[best]):
            symbols, f = words[i], freqs[i]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= f
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                pair_words[pair].discard(i)
            out, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == best[0] and symbols[j + 1] == best[1]:
                    out.append(merged)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            words[i] = out
            for pair in zip(out, out[1:]):
                pair_counts[pair] += f
                pair_words[pair].add(i)
        pair_words.pop(best, None)
        if log_every and len(merges) % log_every == 0:
            print(f"bpe: {len(merges)}/{n_merges} merges, last {merged!r}", flush=True)
    return merges


class Encoder:
    """The trainer's encoder: same ids as the app's tokenizer (tested against @huggingface/tokenizers)."""

    def __init__(self, merges: list[tuple[str, str]]):
        self.merges = merges
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.vocab = {EOT: 0}
        for b in range(256):
            self.vocab[BYTE_TO_CHAR[b]] = 1 + b
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _bpe(self, piece: str) -> list[int]:
        ids = self.cache.get(piece)
        if ids is not None:
            return ids
        symbols = list(piece)
        while len(symbols) > 1:
            # Merge the lowest-ranked pair, all its non-overlapping occurrences left to right.
            ranked = [(self.ranks.get(p, 1 << 30), p) for p in zip(symbols, symbols[1:])]
            rank, best = min(ranked)
            if rank == 1 << 30:
                break
            out, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == best[0] and symbols[j + 1] == best[1]:
                    out.append(symbols[j] + symbols[j + 1])
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            symbols = out
        ids = [self.vocab[s] for s in symbols]
        if len(self.cache) < 500_000:
            self.cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Encode text; the literal <|endoftext|> becomes the special id 0."""
        ids: list[int] = []
        for k, doc in enumerate(text.split(EOT)):
            if k:
                ids.append(0)
            for piece in pre_tokenize(doc):
                ids.extend(self._bpe(piece))
        return ids

    def decode(self, ids: list[int]) -> str:
        parts = []
        for i in ids:
            tok = self.id_to_token[i]
            parts.append(tok.encode("utf-8") if tok == EOT else bytes(CHAR_TO_BYTE[c] for c in tok))
        return b"".join(parts).decode("utf-8", errors="replace")

    def to_hf_json(self) -> dict:
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [{"id": 0, "content": EOT, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": dict(byte_level, trim_offsets=False),
            "decoder": byte_level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [f"{a} {b}" for a, b in self.merges]},
        }

    def save(self, folder: Path, max_positions: int) -> None:
        """Write tokenizer.json + tokenizer_config.json (what a HF checkpoint folder carries)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tokenizer.json").write_text(json.dumps(self.to_hf_json(), ensure_ascii=False), "utf-8")
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOT, "eos_token": EOT, "unk_token": None,
                  "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
                  "model_max_length": max_positions}
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), "utf-8")

    @staticmethod
    def load(folder: Path) -> "Encoder":
        data = json.loads((folder / "tokenizer.json").read_text("utf-8"))
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]]
        enc = Encoder(merges)  # type: ignore[arg-type]
        if enc.vocab != data["model"]["vocab"]:
            raise ValueError(f"{folder / 'tokenizer.json'}: vocab does not follow this trainer's id layout")
        return enc
