// Upcycle in the browser: the dense parent becomes an MoE (experts, granularity, top-k, router seed,
// optionally Drop-Upcycling) in memory, runs at once, and shows that at initialisation it writes exactly
// what its parent writes (plain copies), or how far it moved (Drop-Upcycling re-initialises units).
import { useState } from 'react';
import { usePlayground } from '../state/useStore.ts';
import { formatRecipe, parseRecipe, type UpcycleRecipe } from '../state/url.ts';
import { formatNumber } from './format.ts';

interface Props {
  /** Is the model in the link a dense one (or the upcycled child of one)? */
  parentIsDense: boolean;
  onUpcycle(recipe: UpcycleRecipe | null): void;
  /** Loads the site's dense parent (null when none is installed), so the panel is reachable from any model. */
  onLoadParent: (() => void) | null;
  parentName: string | null;
  locked: boolean;
}

export function UpcyclePanel({ parentIsDense, onUpcycle, onLoadParent, parentName, locked }: Props) {
  const share = usePlayground((s) => s.share);
  const proof = usePlayground((s) => s.proof);
  const current = parseRecipe(share.upcycle);
  const [recipe, setRecipe] = useState<UpcycleRecipe>(current ?? { experts: 8, granularity: 1, topK: 2, seed: 0 });
  const field = (key: 'experts' | 'granularity' | 'topK' | 'seed', label: string, min: number, max: number) => (
    <label>
      <span>{label}</span>
      <input
        type="number"
        data-testid={`up-${key}`}
        min={min}
        max={max}
        value={recipe[key]}
        onChange={(e) => setRecipe({ ...recipe, [key]: Math.round(Number(e.target.value)) })}
      />
    </label>
  );
  const dropPercent = Math.round((recipe.drop ?? 0) * 100);
  const showProof = proof && current && formatRecipe(proof.recipe) === share.upcycle;
  return (
    <section className="panel upcycle" aria-label="Upcycle in the browser" data-testid="upcycle-panel">
      <h2>Upcycle the dense model</h2>
      {!parentIsDense ? (
        <div className="small">
          <p>
            Upcycling starts from a dense model: every expert begins as a copy of its feed-forward block. The model
            loaded now already has experts.
          </p>
          {onLoadParent ? (
            <button
              type="button"
              className="small-button"
              data-testid="load-parent"
              disabled={locked}
              onClick={onLoadParent}
            >
              Load the dense parent{parentName ? ` (${parentName})` : ''} to upcycle it
            </button>
          ) : (
            <p className="dim">No dense model is installed on this site.</p>
          )}
        </div>
      ) : (
        <fieldset disabled={locked}>
          <legend className="sr-only">Upcycling recipe</legend>
          <div className="up-grid">
            {field('experts', 'experts N', 1, 64)}
            {field('granularity', 'granularity G', 1, 16)}
            {field('topK', 'top-k', 1, 64)}
            {field('seed', 'router seed', 0, 1_000_000)}
            <label title="Drop-Upcycling (Nakamura et al., ICLR 2025): each expert re-initialises this share of its intermediate units, so the experts start different and specialise sooner.">
              <span>drop %</span>
              <input
                type="number"
                data-testid="up-drop"
                min={0}
                max={100}
                step={5}
                value={dropPercent}
                onChange={(e) =>
                  setRecipe({
                    ...recipe,
                    drop: Math.min(100, Math.max(0, Math.round(Number(e.target.value)) || 0)) / 100,
                  })
                }
              />
            </label>
          </div>
          <div className="buttons">
            <button type="button" className="primary" data-testid="upcycle" onClick={() => onUpcycle(recipe)}>
              Upcycle and run
            </button>
            {current && (
              <button type="button" data-testid="upcycle-off" onClick={() => onUpcycle(null)}>
                Back to the dense parent
              </button>
            )}
          </div>
          <p className="small">
            Every expert starts as {recipe.granularity > 1 ? `one of ${recipe.granularity} shards of` : 'a copy of'} the
            parent’s feed-forward block; a new random router (seed {recipe.seed}) picks {recipe.topK} of{' '}
            {recipe.experts}.
            {dropPercent > 0
              ? ` Drop-Upcycling then re-initialises ${dropPercent}% of each expert’s units (its own random choice per expert), so the child no longer equals its parent at the start.`
              : ''}
          </p>
        </fieldset>
      )}
      {showProof && (
        <div className="proof" data-testid="upcycle-proof" data-identical={proof.childText === proof.parentText}>
          <h3>
            {proof.recipe.drop
              ? `Drop-Upcycling (${Math.round(proof.recipe.drop * 100)}%): the child starts different from its parent, as expected`
              : proof.childText === proof.parentText
                ? '✓ The child writes exactly what its parent writes'
                : '✗ The child’s text differs from its parent’s'}
          </h3>
          <dl>
            <dt>dense parent</dt>
            <dd data-testid="proof-parent">{proof.parentText}</dd>
            <dt>upcycled child ({share.upcycle})</dt>
            <dd data-testid="proof-child">{proof.childText}</dd>
          </dl>
          <p className="small">
            Same prompt, seed and sampling; largest logit difference on the prompt:{' '}
            <span data-testid="proof-diff">{formatNumber(proof.maxLogitDifference, 7)}</span>
            {proof.recipe.drop ? ' (the re-initialised units change the function).' : ' (float rounding).'}
          </p>
          <p className="small why">
            Why: every expert computes the same function as the parent’s FFN
            {proof.recipe.granularity > 1
              ? ` (the ${proof.recipe.granularity} shards of one copy add up to it, and each is scaled by ${proof.recipe.granularity})`
              : ''}
            , and the router’s chosen weights are renormalised to sum to 1. So whatever the random router picks, Σ
            wᵢ·FFN(x) = FFN(x). Training then lets the copies drift apart and specialise — compare it with the trained
            children (moe-top2, ds-moe) in the compare view.
            {!proof.renormalised &&
              ' (This child does not renormalise, so its output shrinks by about k/N: the identity does not hold.)'}
            {proof.recipe.drop
              ? ` With Drop-Upcycling the identity is given up on purpose: ${Math.round(proof.recipe.drop * 100)}% of each expert’s units are new random weights (drawn with the matrix’s own mean and spread), so the copies are already different and specialise faster once trained.`
              : ''}
          </p>
        </div>
      )}
    </section>
  );
}
