// Keyboard shortcuts for everything frequent (listed in src/ui/HelpSheet.tsx), as actions keyed by
// KeyboardEvent.key. The page's keydown listener (src/ui/shortcuts.ts) calls them.
import { VIEWS, type ControlName } from '../url.ts';
import { chipAction, setChip } from '../store.ts';
import type { ControllerContext } from './context.ts';
import type { EngineActions } from './engine.ts';
import type { ShareActions } from './share.ts';
import type { TourActions } from './tour.ts';

export type ShortcutTable = Record<string, () => void>;

export function shortcutTable(
  ctx: ControllerContext,
  engine: EngineActions,
  share: ShareActions,
  tour: TourActions,
): ShortcutTable {
  const st = () => ctx.store.getState();
  const setShare: ReturnType<typeof st>['setShare'] = (patch) => st().setShare(patch);
  /** The first-choice expert of the selected token at the selected layer. */
  const firstChoice = () => {
    const s = st();
    const r = s.run?.trace.layers[Math.min(s.share.layer, (s.run?.trace.layers.length ?? 1) - 1)]?.[s.share.token];
    const absolute = s.run?.trace.moeLayers[s.share.layer];
    return r && absolute !== undefined ? { layer: absolute, expert: r.experts[0] } : null;
  };
  /** Ablate or force the first choice; the same key again removes it. */
  const toggle = (action: 'ablate' | 'force') => {
    const c = firstChoice();
    if (!c || !can('interventions')) return;
    const iv = st().share.iv;
    st().setInterventions(setChip(iv, c.layer, c.expert, chipAction(iv, c.layer, c.expert) === action ? null : action));
  };
  const can = (name: ControlName) => !st().share.lock.includes(name) && !st().share.hide.includes(name);
  const table: ShortcutTable = {
    '?': () => st().setHelpOpen(!st().helpOpen),
    'Escape': () => (st().helpOpen ? st().setHelpOpen(false) : engine.stop()),
    g: () => can('generate') && engine.generate(),
    n: () => can('routing') && setShare({ mode: 'native' }),
    d: () => can('routing') && setShare({ mode: 'dense' }),
    h: () => can('routing') && setShare({ mode: 'threshold' }),
    'ArrowLeft': () => st().selectToken(st().share.token - 1),
    'ArrowRight': () => st().selectToken(st().share.token + 1),
    '[': () => st().selectLayer(st().share.layer - 1),
    ']': () => st().selectLayer(st().share.layer + 1),
    v: () => can('views') && setShare({ view: VIEWS[(VIEWS.indexOf(st().share.view) + 1) % VIEWS.length] }),
    a: () => toggle('ablate'),
    f: () => toggle('force'),
    u: () => can('interventions') && st().undoInterventions(),
    c: () => can('compare') && setShare({ compare: !st().share.compare }),
    p: () => setShare({ presenter: !st().share.presenter }),
    l: () => can('share') && share.copyLink(),
    'PageDown': () => can('tour') && tour.apply(st().share.step + 1),
    'PageUp': () => can('tour') && tour.apply(st().share.step - 1),
  };
  for (let k = 1; k <= 9; k++) table[String(k)] = () => can('routing') && setShare({ mode: 'topk', k });
  return table;
}
