// The foundry's tokenizer (training/bpe.py) and the app's tokenizer (@huggingface/tokenizers behind
// src/engine/tokenizer.ts) must give the same ids: the models were trained on the Python ids.
// training/tokenizer/agreement.json holds the Python encoder's ids for every held-out eval text
// (public/eval/<domain>.txt) and for an edge-case string; `training/build.py` writes it.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer } from '../../src/engine/tokenizer.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const TOKENIZER_DIR = join(ROOT, 'training', 'tokenizer');
const DOMAINS = ['english', 'german', 'python', 'arithmetic'];

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
const tokenizerJson = readJson(join(TOKENIZER_DIR, 'tokenizer.json'));
const tokenizerConfig = readJson(join(TOKENIZER_DIR, 'tokenizer_config.json'));
const expected = readJson(join(TOKENIZER_DIR, 'agreement.json')) as Record<string, { text: string; ids: number[] }>;

describe('the trainer and the app tokenise held-out text identically', () => {
  const app = loadTokenizer(tokenizerJson, tokenizerConfig);
  const library = new Tokenizer(tokenizerJson as object, tokenizerConfig as object);

  it('covers every domain, with the texts that ship in public/eval', () => {
    for (const domain of DOMAINS) {
      expect(expected[domain].text).toBe(readFileSync(join(ROOT, 'public', 'eval', `${domain}.txt`), 'utf8'));
      expect(expected[domain].ids.length).toBeGreaterThan(500);
    }
    expect(Object.keys(expected)).toContain('edge-cases');
  });

  for (const name of [...DOMAINS, 'edge-cases']) {
    it(`gives the Python encoder's ids for ${name}`, () => {
      const { text, ids } = expected[name];
      expect(app.encode(text)).toEqual(ids);
      expect(library.encode(text, { add_special_tokens: false }).ids).toEqual(ids);
      expect(app.decode(ids)).toBe(text);
    });
  }

  it('knows the vocabulary size and the end-of-text token the models were trained with', () => {
    expect(app.vocabSize).toBe(4096);
    expect(app.eosId).toBe(0);
    expect(app.specialIds).toEqual([0]);
  });
});
