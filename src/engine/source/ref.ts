// Source strings: one vocabulary for where a checkpoint comes from, shared by the page, the CLI and
// share links. `hf:ORG/NAME[@REVISION]`, an `https://` base URL (`http://` on loopback only), a
// built-in model id, or (CLI only) a folder on disk.

import { SourceError } from './errors.ts';

export type SourceRef =
  | { kind: 'builtin'; id: string }
  | { kind: 'hf'; repo: string; revision: string }
  | { kind: 'url'; base: string }
  | { kind: 'local'; path: string };

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

// Hugging Face repo ids: an owner and a name of letters, digits, '-', '_' and '.', no '--' or '..'.
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
// Revisions are branch names, tags or commit hashes; '/' is allowed (refs/pr/1) but no '..'.
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const BUILTIN = /^[a-z0-9][a-z0-9-]{0,63}$/;

const SOURCE_HINT =
  'Write hf:ORG/NAME (optionally @REVISION), an https:// address of a folder holding config.json, or a built-in model id.';

/** True for an origin on this machine (127.0.0.0/8, ::1, localhost): the only hosts plain http:// may name. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function checkRepo(repo: string, text: string): string {
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => REPO_PART.test(p) && !p.includes('--') && !p.includes('..'))) {
    throw new SourceError(
      'invalid',
      text,
      `"${text}" is not a Hugging Face repository id of the form ORG/NAME.`,
      SOURCE_HINT,
    );
  }
  return repo;
}

/** A base URL a model may be fetched from: https anywhere, http only on loopback; no credentials. */
export function checkBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SourceError('invalid', text, `"${text}" is not a web address.`, SOURCE_HINT);
  }
  if (url.username || url.password) {
    throw new SourceError(
      'invalid',
      text,
      'The address contains a user name or password; credentials never go in a model address or a link.',
      'Remove the "user:password@" part.',
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new SourceError(
      'invalid',
      text,
      `Models load only over https:// (plain http:// is allowed on this machine only), not ${url.protocol}//${url.host}.`,
      SOURCE_HINT,
    );
  }
  url.hash = '';
  url.search = '';
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

/**
 * Parse a source string. `allowLocal`: the CLI also takes a folder path (anything that is not one of
 * the other forms); the page never does, since a link cannot carry a file on someone's disk.
 */
export function parseSourceRef(text: string, options: { allowLocal?: boolean } = {}): SourceRef {
  const s = text.trim();
  if (s.startsWith('hf:')) {
    const body = s.slice(3);
    const at = body.indexOf('@');
    const repo = checkRepo(at < 0 ? body : body.slice(0, at), s);
    const revision = at < 0 ? DEFAULT_REVISION : body.slice(at + 1);
    if (!REVISION.test(revision) || revision.includes('..')) {
      throw new SourceError('invalid', s, `"${revision}" is not a revision (a branch, tag or commit).`, SOURCE_HINT);
    }
    return { kind: 'hf', repo, revision };
  }
  if (/^https?:\/\//i.test(s)) return { kind: 'url', base: checkBaseUrl(s) };
  if (options.allowLocal) return { kind: 'local', path: s };
  if (BUILTIN.test(s)) return { kind: 'builtin', id: s };
  throw new SourceError('invalid', s, `"${s}" is not a model source.`, SOURCE_HINT);
}

export function formatSourceRef(ref: SourceRef): string {
  switch (ref.kind) {
    case 'builtin':
      return ref.id;
    case 'hf':
      return ref.revision === DEFAULT_REVISION ? `hf:${ref.repo}` : `hf:${ref.repo}@${ref.revision}`;
    case 'url':
      return ref.base;
    case 'local':
      return ref.path;
  }
}

/** The base URL files are fetched from, as huggingface_hub resolves them: {endpoint}/{repo}/resolve/{revision}/. */
export function hubBaseUrl(repo: string, revision: string, endpoint = DEFAULT_HUB_ENDPOINT): string {
  const base = endpoint.replace(/\/+$/, '');
  return `${base}/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

/** The URL of one file of a remote source. */
export function fileUrl(base: string, file: string): string {
  return base + file.split('/').map(encodeURIComponent).join('/');
}
