// Builds a small byte-level BPE tokenizer.json (GPT-2 style) from a training text, deterministically.
// Used for the synthetic bench models and tests: every string round-trips, whatever the vocabulary size.

/** GPT-2's reversible byte -> printable character map, so every byte is a visible vocabulary entry. */
export function byteToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  }
  return table;
}

/**
 * A tokenizer.json with 256 byte tokens, (vocabSize - 257) merges learned greedily on `text`
 * (most frequent adjacent pair, ties broken by first occurrence order), and an <|endoftext|> special token.
 */
export function buildByteLevelBpe(text: string, vocabSize: number): Record<string, unknown> {
  if (vocabSize < 257) throw new Error(`vocabSize must be at least 257 (256 bytes + 1 special), got ${vocabSize}`);
  const b2u = byteToUnicode();
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[b2u[b]] = b;

  // Pre-tokenise roughly like GPT-2 (a word keeps its leading space) and count words.
  const wordCounts = new Map<string, number>();
  for (const w of text.match(/ ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+/g) ?? []) {
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  const encoder = new TextEncoder();
  const words = [...wordCounts.entries()].map(([w, count]) => ({
    symbols: [...encoder.encode(w)].map((b) => b2u[b]),
    count,
  }));

  const merges: [string, string][] = [];
  let nextId = 256;
  while (nextId < vocabSize - 1) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + '\u0000' + symbols[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestCount = 1; // a pair seen once is not worth a merge
    for (const [key, c] of pairCounts) {
      if (c > bestCount) {
        best = key;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b;
    merges.push([a, b]);
    vocab[merged] = nextId++;
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(merged);
          i++;
        } else {
          out.push(word.symbols[i]);
        }
      }
      word.symbols = out;
    }
  }
  // Pad with unused filler tokens so the vocabulary has exactly the requested size.
  while (nextId < vocabSize - 1) vocab[`<|unused${nextId}|>`] = nextId++;
  const eosId = nextId;

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: eosId,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
