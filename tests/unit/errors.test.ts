// Every error a person can meet shares one base (MoeError): a sentence and a hint, told apart by name.
import { describe, expect, it } from 'vitest';
import { MoeError } from '../../src/engine/errors.ts';
import { CheckpointError } from '../../src/engine/format/errors.ts';
import { ModelTooLargeError, QuantizationError } from '../../src/engine/format/quant.ts';
import { RoutingModeError, parseRoutingMode } from '../../src/engine/routing/index.ts';
import { RunError } from '../../src/engine/run/errors.ts';
import { TokenizerError, loadTokenizer } from '../../src/engine/tokenizer.ts';
import { UpcycleError } from '../../src/engine/upcycle/index.ts';
import { LensError } from '../../src/engine/lens/errors.ts';
import { SourceError } from '../../src/engine/source/errors.ts';
import { parseSourceRef } from '../../src/engine/source/ref.ts';
import {
  WebGpuDeviceLostError,
  WebGpuInternalError,
  WebGpuTooLargeError,
  WebGpuUnavailableError,
  WebGpuUnsupportedError,
} from '../../src/engine/backends/webgpu/errors.ts';
import { CliError } from '../../src/cli/common.ts';

describe('one error base', () => {
  const made: Array<[string, MoeError]> = [
    ['CheckpointError', new CheckpointError('config.json', 'is broken.', 'Download it again.')],
    ['QuantizationError', new QuantizationError('cannot quantize.')],
    ['ModelTooLargeError', new ModelTooLargeError('too large.', 'Use q4.')],
    ['RoutingModeError', new RoutingModeError('bad mode.', 'Use native.')],
    ['RunError', new RunError('bad run.', 'Try again.')],
    ['TokenizerError', new TokenizerError('tokenizer.json', 'bad.', 'Re-export.')],
    ['UpcycleError', new UpcycleError('bad recipe.', 'Fewer experts.')],
    ['LensError', new LensError('no texts.', 'Add a text.')],
    ['SourceError', new SourceError('network', 'config.json', 'offline.', 'Connect.')],
    ['WebGpuUnavailableError', new WebGpuUnavailableError('no adapter.')],
    ['WebGpuDeviceLostError', new WebGpuDeviceLostError('lost.')],
    ['WebGpuTooLargeError', new WebGpuTooLargeError('too big.')],
    ['WebGpuUnsupportedError', new WebGpuUnsupportedError('mixed dtypes.')],
    ['WebGpuInternalError', new WebGpuInternalError('validation error.')],
    ['CliError', new CliError('bad flag.', 'See --help.')],
  ];
  it.each(made)('%s is a MoeError with its own name and a hint', (name, err) => {
    expect(err).toBeInstanceOf(MoeError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(err.hint.length).toBeGreaterThan(3);
  });

  it('errors thrown by the engine on bad input are MoeErrors', () => {
    const thrown = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return null;
    };
    expect(thrown(() => parseRoutingMode('topk:x'))).toBeInstanceOf(MoeError);
    expect(thrown(() => loadTokenizer(undefined))).toBeInstanceOf(MoeError);
    expect(thrown(() => parseSourceRef('hf:nope'))).toBeInstanceOf(MoeError);
  });
});
