// The routing views in tabs (token paths, router probabilities with a table twin, expert load),
// with the current view's export.
import { useRef, useState } from 'react';
import type { RunState } from '../state/store.ts';
import { usePlayground } from '../state/useStore.ts';
import { VIEWS, type ViewName } from '../state/url.ts';
import { ExpertLoad } from '../viz/ExpertLoad.tsx';
import { HeatmapTable } from '../viz/HeatmapTable.tsx';
import { PathGrid } from '../viz/PathGrid.tsx';
import { ProbHeatmap } from '../viz/ProbHeatmap.tsx';
import { ErrorBoundary } from './ErrorBoundary.tsx';
import { ExportBar } from './ExportBar.tsx';
import { useTeacherControls } from './teacher.ts';

const VIEW_LABEL: Record<ViewName, string> = {
  paths: 'Token paths',
  probs: 'Router probabilities',
  load: 'Expert load',
};

export function ViewPanel({
  run,
  layer,
  token,
  numExperts,
}: {
  run: RunState;
  layer: number;
  token: number;
  numExperts: number;
}) {
  const view = usePlayground((s) => s.share.view);
  const iv = usePlayground((s) => s.share.iv);
  const model = usePlayground((s) => s.model);
  const setShare = usePlayground((s) => s.setShare);
  const cycleIntervention = usePlayground((s) => s.cycleIntervention);
  const { hidden, locked } = useTeacherControls();
  const [tableVisible, setTableVisible] = useState(false);
  const viewRef = useRef<HTMLDivElement>(null);
  return (
    <section className="panel view-panel" aria-label="Routing views">
      <div className="panel-tools">
        {!hidden('views') && (
          <div className="tabs" role="tablist" aria-label="Views">
            {VIEWS.map((v) => (
              <button
                key={v}
                type="button"
                role="tab"
                aria-selected={view === v}
                data-testid={`view-${v}`}
                className={view === v ? 'tab-on' : undefined}
                disabled={locked('views')}
                onClick={() => setShare({ view: v })}
              >
                {VIEW_LABEL[v]}
              </button>
            ))}
          </div>
        )}
        {!hidden('export') && <ExportBar target={viewRef} name="view" title={VIEW_LABEL[view]} kind="svg" />}
      </div>
      <div ref={viewRef} role="tabpanel" aria-label={VIEW_LABEL[view]}>
        <ErrorBoundary key={view} area={`the ${VIEW_LABEL[view]} view`}>
          {view === 'paths' && (
            <PathGrid run={run} layer={layer} selected={token} onSelect={(i, m) => setShare({ token: i, layer: m })} />
          )}
          {view === 'probs' && (
            <>
              <ProbHeatmap
                run={run}
                token={token}
                layer={layer}
                numExperts={numExperts}
                onSelectLayer={(m) => setShare({ layer: m })}
                iv={iv}
                onCycle={(l, e) => {
                  if (!locked('interventions') && !hidden('interventions') && model && model.numExperts > 0)
                    cycleIntervention(l, e);
                }}
              />
              <label className="check small">
                <input
                  type="checkbox"
                  data-testid="table-toggle"
                  checked={tableVisible}
                  onChange={(e) => setTableVisible(e.target.checked)}
                />{' '}
                show as a table
              </label>
            </>
          )}
          {view === 'load' && (
            <ExpertLoad run={run} numExperts={numExperts} layer={layer} onSelectLayer={(m) => setShare({ layer: m })} />
          )}
        </ErrorBoundary>
      </div>
      {view === 'probs' && (
        <HeatmapTable run={run} token={token} numExperts={numExperts} iv={iv} visible={tableVisible} />
      )}
    </section>
  );
}
