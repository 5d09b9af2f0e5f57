// `moe upcycle DENSE_DIR OUT_DIR --experts N ...`: write a Mixtral checkpoint made from a dense parent.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exportCheckpoint } from '../engine/format/index.ts';
import { DEFAULT_ROUTER_SCALE, upcycle, type ExpertScaling, type UpcycleOptions } from '../engine/upcycle/index.ts';
import { CliError, formatBytes, isCount, isNonNegativeInteger, numberFlag, openCheckpoint } from './common.ts';

export interface UpcycleFlags {
  experts?: string;
  granularity?: string;
  topK?: string;
  router?: string;
  routerScale?: string;
  seed?: string;
  noise?: string;
  scaling?: string;
  drop?: string;
}

export function upcycleOptionsFromFlags(flags: UpcycleFlags): UpcycleOptions {
  if (flags.experts === undefined)
    throw new CliError('upcycle needs --experts N.', 'Example: moe upcycle DENSE_DIR OUT_DIR --experts 8.', true);
  const experts = numberFlag('experts', flags.experts, 8, isCount, 'a whole number ≥ 1');
  const granularity = numberFlag('granularity', flags.granularity, 1, isCount, 'a whole number ≥ 1');
  const topK = flags.topK === undefined ? undefined : numberFlag('top-k', flags.topK, 2, isCount, 'a whole number ≥ 1');
  const seed = numberFlag('seed', flags.seed, 0, isNonNegativeInteger, 'a whole number ≥ 0');
  const noise = numberFlag('noise', flags.noise, 0, (n) => n >= 0, 'a number ≥ 0');
  const drop = numberFlag('drop', flags.drop, 0, (n) => n >= 0 && n <= 1, 'a number between 0 and 1');
  const routerKind = flags.router ?? 'random';
  if (routerKind !== 'random' && routerKind !== 'zero')
    throw new CliError(`Unknown router "${routerKind}".`, 'Use --router random or --router zero.');
  const scale = numberFlag('router-scale', flags.routerScale, DEFAULT_ROUTER_SCALE, (n) => n >= 0, 'a number ≥ 0');
  if (routerKind === 'zero' && flags.routerScale !== undefined)
    throw new CliError(
      '--router-scale only applies to --router random.',
      'Drop --router-scale, or use --router random.',
    );
  const scaling = flags.scaling ?? 'exact';
  if (scaling !== 'exact' && scaling !== 'megatron-cuberoot')
    throw new CliError(`Unknown scaling "${scaling}".`, 'Use --scaling exact or --scaling megatron-cuberoot.');
  return {
    experts,
    granularity,
    topK,
    seed,
    noise,
    router: routerKind === 'zero' ? { kind: 'zero' } : { kind: 'random', scale },
    scaling: scaling as ExpertScaling,
    drop,
  };
}

export async function upcycleCommand(denseDir: string, outDir: string, flags: UpcycleFlags): Promise<void> {
  const options = upcycleOptionsFromFlags(flags);
  if (resolve(denseDir) === resolve(outDir))
    throw new CliError("The output folder is the parent's folder.", 'Write the upcycled model to a new folder.');
  const parent = await openCheckpoint(denseDir);
  const child = upcycle(parent.spec, parent.weights, { ...options, from: denseDir });
  const files = exportCheckpoint(child.spec, child.weights, parent.tokenizerJson, parent.tokenizerConfigJson);
  if (existsSync(outDir) && existsSync(join(outDir, 'config.json'))) {
    // Overwriting is allowed, but a stale shard index would make the loader read old shards instead.
    for (const stale of ['model.safetensors.index.json']) {
      if (existsSync(join(outDir, stale)))
        throw new CliError(
          `${join(outDir, stale)} from an earlier checkpoint is in the way.`,
          'Write to an empty folder.',
        );
    }
  }
  mkdirSync(outDir, { recursive: true });
  let total = 0;
  for (const [name, bytes] of files) {
    writeFileSync(join(outDir, name), bytes);
    total += bytes.byteLength;
  }
  const moe = child.spec.moe!;
  process.stdout.write(
    `wrote ${outDir}: mixtral, ${moe.numExperts} experts (granularity ${options.granularity}), top-${moe.topK}, ` +
      `expert width ${moe.expertIntermediateSize}, ${child.spec.dtype}, ${formatBytes(total)}` +
      (options.drop
        ? `; Drop-Upcycling re-initialised ${Math.round(options.drop * moe.expertIntermediateSize)} of ${moe.expertIntermediateSize} units per expert, so the child no longer equals its parent`
        : '') +
      '\n',
  );
}
