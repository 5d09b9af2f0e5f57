// A thin wrapper around @huggingface/tokenizers: the engine only needs text <-> ids.
import { Tokenizer } from '@huggingface/tokenizers';
import { MoeError } from './errors.ts';

export class TokenizerError extends MoeError {
  readonly file: string;
  constructor(file: string, message: string, hint: string) {
    super(message, hint);
    this.name = 'TokenizerError';
    this.file = file;
  }
}

export interface TextTokenizer {
  /** Token ids for `text`; special tokens (BOS/EOS) only when tokenizer_config.json asks for them. */
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** The text of one token as it would appear in decoded output (byte-level and metaspace markers undone). */
  decodeToken(id: number): string;
  /** Largest token id + 1, added tokens included. */
  readonly vocabSize: number;
  /** Ids of the special tokens (BOS, EOS, PAD...), for stop conditions and display. */
  readonly specialIds: number[];
  /** The end-of-sequence id when the config names one. */
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  /** Every id that ends generation: the tokenizer config's EOS and generation_config.json's eos_token_id(s). */
  readonly stopIds: number[];
}

const FILE = 'tokenizer.json';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The token text of a special-token entry in tokenizer_config.json: a string or {content}. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

export function loadTokenizer(
  tokenizerJson: unknown,
  tokenizerConfigJson?: unknown,
  generationConfigJson?: unknown,
): TextTokenizer {
  if (tokenizerJson === undefined) {
    throw new TokenizerError(
      FILE,
      `This model has no ${FILE}, so text cannot be turned into tokens.`,
      'Add the tokenizer.json of the model it was made from (a checkpoint without one can still be scored on token ids from the command line).',
    );
  }
  if (!isObject(tokenizerJson)) {
    throw new TokenizerError(
      FILE,
      `${FILE} is not a JSON object.`,
      'Use the tokenizer.json exported by Hugging Face tokenizers (the "fast" tokenizer file).',
    );
  }
  const model = tokenizerJson.model;
  if (!isObject(model) || (!isObject(model.vocab) && !Array.isArray(model.vocab))) {
    throw new TokenizerError(
      FILE,
      `${FILE} has no "model.vocab" section.`,
      'The file may be truncated or a different format (tokenizer.model / vocab.json are not supported); re-export tokenizer.json.',
    );
  }
  if (model.type !== undefined && !['BPE', 'WordPiece', 'Unigram'].includes(model.type as string)) {
    throw new TokenizerError(
      FILE,
      `${FILE} uses the tokenizer model type "${String(model.type)}", which is not supported.`,
      'BPE, WordPiece and Unigram tokenizers from Hugging Face work.',
    );
  }
  if (tokenizerConfigJson !== undefined && !isObject(tokenizerConfigJson)) {
    throw new TokenizerError(
      'tokenizer_config.json',
      'tokenizer_config.json is not a JSON object.',
      'Delete the file or replace it with the one from the model repository.',
    );
  }
  const config = (tokenizerConfigJson ?? {}) as Record<string, unknown>;
  // The library requires these keys to exist, even when null.
  const json: Record<string, unknown> = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    added_tokens: [],
    ...tokenizerJson,
  };
  if (!Array.isArray(json.added_tokens)) json.added_tokens = [];

  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new TokenizerError(
      FILE,
      `${FILE} could not be read: ${(e as Error).message}.`,
      'The tokenizer type may be unsupported; BPE, WordPiece and Unigram tokenizers from Hugging Face work.',
    );
  }

  // HF transformers adds BOS/EOS through the post-processor by default; we only do it when the
  // config explicitly asks, so scored token ids are exactly the text's tokens unless told otherwise.
  const addSpecialTokens = config.add_bos_token === true || config.add_eos_token === true;

  const addedTokens = (json.added_tokens as { id: number; special?: boolean }[]).filter(
    (t) => typeof t?.id === 'number',
  );
  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  for (const t of addedTokens) if (t.id > maxId) maxId = t.id;

  const idOf = (entry: unknown): number | undefined => {
    const content = tokenContent(entry);
    return content === undefined ? undefined : tok.token_to_id(content);
  };
  const specialIds = addedTokens.filter((t) => t.special).map((t) => t.id);
  const eosId = idOf(config.eos_token);
  // generation_config.json's eos_token_id is a number or a list (Llama 3 lists several).
  const generationEos = isObject(generationConfigJson) ? generationConfigJson.eos_token_id : undefined;
  const stopIds = new Set<number>(eosId === undefined ? [] : [eosId]);
  for (const id of Array.isArray(generationEos) ? generationEos : [generationEos]) {
    if (Number.isInteger(id) && (id as number) >= 0 && (id as number) <= maxId) stopIds.add(id as number);
  }

  return {
    vocabSize: maxId + 1,
    specialIds,
    eosId,
    bosId: idOf(config.bos_token),
    stopIds: [...stopIds],
    encode(text: string): number[] {
      if (text.length === 0) return [];
      return tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    },
    decode(ids: number[]): string {
      // The library throws on an empty list; an empty sequence is simply empty text.
      if (ids.length === 0) return '';
      return tok.decode(ids, { clean_up_tokenization_spaces: false });
    },
    decodeToken(id: number): string {
      return tok.decode([id], { clean_up_tokenization_spaces: false });
    },
  };
}
