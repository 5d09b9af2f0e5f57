// Intervention chips: ablate (L3E5-) or force (L3E5+) an expert at a layer. Typed here or clicked
// on the router-probability heatmap; every change re-scores the text at once and can be undone.
import { useState } from 'react';
import { usePlayground } from '../state/useStore.ts';
import { fitInterventions } from '../state/url.ts';
import { formatInterventions, parseInterventions } from '../engine/routing/index.ts';

interface Props {
  /** Regenerate from the prompt under the current routing and interventions (the text changes). */
  onRegenerate(): void;
  disabled: boolean;
}

/** What a person types for one chip: "l3e5" means ablate (L3E5-). The engine's parser reads the rest. */
function chipText(typed: string): string {
  return /[+-]$/.test(typed) ? typed : `${typed}-`;
}

export function Interventions({ onRegenerate, disabled }: Props) {
  const iv = usePlayground((s) => s.share.iv);
  const undoCount = usePlayground((s) => s.ivUndo.length);
  const model = usePlayground((s) => s.model);
  const setInterventions = usePlayground((s) => s.setInterventions);
  const undo = usePlayground((s) => s.undoInterventions);
  const [draft, setDraft] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const chips = iv.split(',').filter((c) => c !== '');
  const isMoe = (model?.numExperts ?? 0) > 0;

  const add = () => {
    const parts = draft.split(/[,\s]+/).filter((p) => p !== '');
    let added: ReturnType<typeof parseInterventions>;
    try {
      added = parseInterventions(parts.map(chipText).join(','));
    } catch {
      const bad =
        parts.find((p) => {
          try {
            parseInterventions(chipText(p));
            return false;
          } catch {
            return true;
          }
        }) ?? draft;
      setProblem(
        `"${bad}" is not a chip: write L<layer>E<expert>, then - to ablate (default) or + to force, e.g. L1E3- or L0E2+.`,
      );
      return;
    }
    // A new chip for an expert replaces its old one.
    const current = parseInterventions(iv).filter(
      (c) => !added.some((a) => a.layer === c.layer && a.expert === c.expert),
    );
    const merged = formatInterventions([...current, ...added]);
    const fitted = model ? fitInterventions(merged, model) : { iv: merged, notices: [] };
    setProblem(fitted.notices.length > 0 ? fitted.notices.join(' ') : null);
    setInterventions(fitted.iv);
    setDraft('');
  };

  return (
    <fieldset className="interventions" data-testid="interventions" disabled={disabled}>
      <legend>Interventions</legend>
      {!isMoe && model && (
        <p className="dim small">This model is dense: upcycle it or pick an MoE model to intervene on its router.</p>
      )}
      <form
        className="chip-form"
        onSubmit={(event) => {
          event.preventDefault();
          add();
        }}
      >
        <label>
          <span>ablate (−) or force (+) an expert, e.g. L1E3- or L0E2+</span>
          <input
            data-testid="iv-input"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            placeholder="L1E3-"
            aria-describedby="iv-help"
            spellCheck={false}
            autoComplete="off"
          />
        </label>
        <button type="submit" data-testid="iv-add" disabled={!isMoe || draft.trim() === ''}>
          Add
        </button>
      </form>
      <p id="iv-help" className="small dim">
        Or click a cell of the router-probability view. Ablated: the router may not pick it. Forced: always computed.
      </p>
      {problem && (
        <p className="small problem" role="alert" data-testid="iv-problem">
          {problem}
        </p>
      )}
      <ul className="chips" aria-label="Active interventions" data-testid="iv-chips">
        {chips.map((chip) => (
          <li key={chip} className={`iv-chip ${chip.endsWith('-') ? 'iv-ablate' : 'iv-force'}`} data-chip={chip}>
            {chip.endsWith('-') ? '✕ ' : '★ '}
            {chip}
            <button
              type="button"
              className="link"
              aria-label={`remove ${chip}`}
              onClick={() => setInterventions(chips.filter((c) => c !== chip).join(','))}
            >
              ×
            </button>
          </li>
        ))}
        {chips.length === 0 && <li className="dim small">none</li>}
      </ul>
      <div className="buttons">
        <button type="button" data-testid="iv-undo" disabled={undoCount === 0} onClick={undo} aria-keyshortcuts="u">
          Undo
        </button>
        <button type="button" data-testid="iv-clear" disabled={chips.length === 0} onClick={() => setInterventions('')}>
          Clear
        </button>
        <button
          type="button"
          data-testid="iv-regenerate"
          disabled={!model}
          onClick={onRegenerate}
          title="Generate the text again from the prompt with these interventions, to see the words change"
        >
          Regenerate with them
        </button>
      </div>
    </fieldset>
  );
}
