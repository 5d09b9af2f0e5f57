import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, TokenizerError } from '../../src/engine/tokenizer.ts';
import { buildByteLevelBpe } from '../../src/cli/byteBpe.ts';

const TRAIN =
  'the quick brown fox jumps over the lazy dog. the dog sleeps; the fox runs. ' +
  'experts route tokens, the router picks the experts for the tokens. 0123456789 ';

describe('loadTokenizer on a byte-level BPE built here', () => {
  const json = buildByteLevelBpe(TRAIN.repeat(3), 300);
  const tok = loadTokenizer(json);

  it('has the requested vocabulary size and the special token', () => {
    expect(tok.vocabSize).toBe(300);
    expect(tok.specialIds).toEqual([299]);
  });

  it('round-trips arbitrary text, including bytes never seen in training', () => {
    for (const text of ['the fox', ' the router picks', 'Grüße, 日本語! \n\ttabs', 'x']) {
      const ids = tok.encode(text);
      expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 300)).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
  });

  it('uses learned merges: a frequent word takes fewer tokens than bytes', () => {
    expect(tok.encode(' the').length).toBe(1);
    expect(tok.encode(' experts').length).toBeLessThan(' experts'.length);
  });

  it('adds no special tokens by default and decodes single tokens', () => {
    const ids = tok.encode('the dog');
    expect(ids).not.toContain(299);
    expect(ids.map((i) => tok.decodeToken(i)).join('')).toBe('the dog');
    expect(tok.decode([])).toBe('');
    expect(tok.encode('')).toEqual([]);
  });

  it('stops on the config EOS and every eos_token_id of generation_config.json, ignoring ids outside the vocabulary', () => {
    const special = (json.added_tokens as Array<{ content: string }>)[0].content;
    const withConfigs = loadTokenizer(json, { eos_token: special }, { eos_token_id: [7, 299, 5000] });
    expect(withConfigs.eosId).toBe(299);
    expect(withConfigs.stopIds.sort((a, b) => a - b)).toEqual([7, 299]);
    expect(loadTokenizer(json, undefined, { eos_token_id: 12 }).stopIds).toEqual([12]);
    expect(tok.stopIds).toEqual([]);
  });

  it('encodes the special token text as its id', () => {
    expect(tok.encode('a<|endoftext|>')).toEqual([...tok.encode('a'), 299]);
  });
});

describe('bad tokenizer files', () => {
  it('rejects non-objects and a missing model with a TokenizerError naming the file', () => {
    for (const bad of [null, 42, [], 'text', { version: '1.0' }, { model: { type: 'BPE' } }]) {
      let err: unknown;
      try {
        loadTokenizer(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TokenizerError);
      expect((err as TokenizerError).file).toBe('tokenizer.json');
      expect((err as TokenizerError).message).toMatch(/tokenizer\.json/);
      expect((err as TokenizerError).hint.length).toBeGreaterThan(10);
    }
  });

  it('rejects an unknown model type with a TokenizerError', () => {
    expect(() => loadTokenizer({ model: { type: 'Mystery', vocab: {} } })).toThrow(TokenizerError);
  });
});

// Real tokenizers from the PyTorch fixture script, when they exist: expected.json may carry the
// token ids HF tokenizers produced for its text.
const FIXTURES = 'tests/fixtures/models';
const fixtureDirs = existsSync(FIXTURES)
  ? readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'tokenizer.json')))
  : [];
describe.skipIf(fixtureDirs.length === 0)('fixture tokenizers', () => {
  for (const dir of fixtureDirs) {
    it(`${dir}: loads and round-trips text`, () => {
      const configPath = join(FIXTURES, dir, 'tokenizer_config.json');
      const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : undefined;
      const tok = loadTokenizer(JSON.parse(readFileSync(join(FIXTURES, dir, 'tokenizer.json'), 'utf8')), config);
      const modelVocab = JSON.parse(readFileSync(join(FIXTURES, dir, 'config.json'), 'utf8')).vocab_size;
      expect(tok.vocabSize).toBeGreaterThan(1);
      expect(tok.vocabSize).toBeLessThanOrEqual(modelVocab);
      const text = 'The router sends each token to two experts.';
      const ids = tok.encode(text);
      expect(ids.length).toBeGreaterThan(0);
      expect(tok.decode(ids)).toBe(text);
      if (config?.eos_token) expect(tok.eosId).toBeDefined();
      const expectedPath = join(FIXTURES, dir, 'expected.json');
      const expected = existsSync(expectedPath) ? JSON.parse(readFileSync(expectedPath, 'utf8')) : {};
      if (typeof expected.text === 'string' && Array.isArray(expected.textTokens)) {
        expect(tok.encode(expected.text)).toEqual(expected.textTokens);
      }
    });
  }
});
