// The page's layout. Every action lives in the controller (src/state/controller); the panels read
// the store and call those actions.
import { useMemo } from 'react';
import { controller, usePlayground } from '../state/useStore.ts';
import { formatShareFragment } from '../state/url.ts';
import { denseParentOf } from '../state/controller/models.ts';
import { ComparePane } from './ComparePane.tsx';
import { Controls } from './Controls.tsx';
import { DetailPanel } from './DetailPanel.tsx';
import { ErrorBoundary } from './ErrorBoundary.tsx';
import { TraceExport } from './ExportBar.tsx';
import { Glossary } from './Glossary.tsx';
import { Header } from './Header.tsx';
import { HelpSheet } from './HelpSheet.tsx';
import { Interventions } from './Interventions.tsx';
import { LensesPanel } from './LensesPanel.tsx';
import { Metrics } from './Metrics.tsx';
import { ModelPicker } from './ModelPicker.tsx';
import { OpenModel } from './OpenModel.tsx';
import { DeviceModels } from './DeviceModels.tsx';
import { Notices } from './Notices.tsx';
import { useShortcuts } from './shortcuts.ts';
import { TeacherTools } from './TeacherTools.tsx';
import { TextPanel } from './TextPanel.tsx';
import { TourPanel } from './Tour.tsx';
import { useTeacherControls } from './teacher.ts';
import { QuantPanel } from './QuantPanel.tsx';
import { UpcyclePanel } from './UpcyclePanel.tsx';
import { ViewPanel } from './ViewPanel.tsx';

/** Exports the current view as SVG (the `s` shortcut presses the view's own export button). */
function exportCurrentView(): void {
  document.querySelector<HTMLButtonElement>('[data-testid="export-view-svg"]')?.click();
}

export function App() {
  const model = usePlayground((s) => s.model);
  const backend = usePlayground((s) => s.backend);
  const builtInModels = usePlayground((s) => s.builtInModels);
  const run = usePlayground((s) => s.run);
  const share = usePlayground((s) => s.share);
  const stage = usePlayground((s) => s.stage);
  const tour = usePlayground((s) => s.tour);
  const helpOpen = usePlayground((s) => s.helpOpen);
  const setHelpOpen = usePlayground((s) => s.setHelpOpen);
  const setShare = usePlayground((s) => s.setShare);
  const { hidden, locked } = useTeacherControls();

  const shortcuts = useMemo(
    () => ({
      ...controller.shortcuts,
      s: () => !share.lock.includes('export') && !share.hide.includes('export') && exportCurrentView(),
    }),
    [share.lock, share.hide],
  );
  useShortcuts(shortcuts, true);

  const numExperts = model?.numExperts || (run ? (run.trace.layers[0]?.[0]?.probs.length ?? 8) : 8);
  const layer = Math.min(share.layer, Math.max((run?.trace.moeLayers.length ?? 1) - 1, 0));
  const token = Math.min(share.token, Math.max((run?.tokenIds.length ?? 1) - 1, 0));
  const className = ['app', share.presenter ? 'presenter' : '', share.embed ? 'embed' : ''].filter(Boolean).join(' ');
  const canUpcycle = model !== null && (model.numExperts === 0 || share.upcycle !== '');
  const denseParent = denseParentOf(builtInModels);
  // A class link that hides or locks controls is the students' view: no teacher tools to undo the locks.
  const classLink = share.lock.length > 0 || share.hide.length > 0;
  const wide = share.embed && hidden('prompt') && hidden('sampling') && hidden('routing') && hidden('interventions');

  return (
    <main className={className} data-testid="app" data-presenter={share.presenter} data-embed={share.embed}>
      {!share.embed && <Header />}
      {share.embed && (
        <p className="embed-bar small">
          <strong>MoE Playground</strong> · {model?.id ?? stage} ·{' '}
          <a
            href={`${location.pathname}#${formatShareFragment({ ...share, embed: false })}`}
            target="_blank"
            rel="noreferrer"
          >
            open the full playground
          </a>
        </p>
      )}

      {tour && !share.embed && !hidden('tour') && (share.step >= 0 || controller.env.firstScreen) && (
        <TourPanel
          tour={tour}
          builtInModels={builtInModels}
          autoplay={controller.tour.autoplay}
          onApply={controller.tour.apply}
          locked={locked('tour')}
        />
      )}
      <ModelPicker />
      {!hidden('model') && !locked('model') && !share.embed && (
        <div className="open-row">
          <OpenModel
            store={controller.sources.store}
            actions={controller.sources}
            backend={backend?.kind ?? null}
            modelId={model?.id ?? null}
            onCopyLinkWithoutModel={controller.share.copyLink}
          />
          <DeviceModels store={controller.sources.store} actions={controller.sources} modelId={model?.id ?? null} />
        </div>
      )}
      <Notices />

      <div className={wide ? 'layout layout-wide' : 'layout'}>
        <div className="side">
          <Controls
            onGenerate={controller.engine.generate}
            onStop={controller.engine.stop}
            onShare={controller.share.copyLink}
            hidden={hidden}
            locked={locked}
          />
          {model && !hidden('interventions') && model.numExperts > 0 && (
            <Interventions onRegenerate={controller.engine.generate} disabled={locked('interventions')} />
          )}
          {model && !share.embed && !hidden('model') && <QuantPanel locked={locked('model')} />}
          {model && !hidden('upcycle') && !share.embed && (
            <UpcyclePanel
              parentIsDense={canUpcycle}
              onUpcycle={controller.upcycle.upcycle}
              onLoadParent={denseParent ? controller.upcycle.loadParent : null}
              parentName={denseParent?.name ?? null}
              locked={locked('upcycle')}
            />
          )}
        </div>
        <div className="views">
          {run && (
            <>
              <TextPanel run={run} layer={layer} token={token} />
              <div className="metrics-row">
                <ErrorBoundary area="the scores">
                  <Metrics />
                </ErrorBoundary>
                {!hidden('export') && <TraceExport />}
                {!hidden('compare') && !share.embed && (
                  <button
                    type="button"
                    className="small-button"
                    data-testid="compare-button"
                    aria-pressed={share.compare}
                    aria-keyshortcuts="c"
                    disabled={locked('compare')}
                    onClick={() => setShare({ compare: !share.compare })}
                  >
                    {share.compare ? 'Close the comparison' : 'Compare with another model or routing'}
                  </button>
                )}
              </div>
              <Glossary />
              {share.compare && !hidden('compare') && <ComparePane locked={locked('compare')} />}
              <ViewPanel run={run} layer={layer} token={token} numExperts={numExperts} />
              <ErrorBoundary area="the token details">
                <DetailPanel run={run} token={token} numExperts={numExperts} />
              </ErrorBoundary>
            </>
          )}
        </div>
      </div>
      {!share.embed && !hidden('lenses') && (
        <ErrorBoundary area="the Lenses view">
          <LensesPanel locked={locked('lenses')} />
        </ErrorBoundary>
      )}
      {!share.embed && !classLink && <TeacherTools />}
      <HelpSheet open={helpOpen} onClose={() => setHelpOpen(false)} />
    </main>
  );
}
