// Export buttons: a view as SVG (styles inlined) or PNG (2×), and the routing trace as CSV or JSON.
import { useState, type RefObject } from 'react';
import { usePlayground } from '../state/useStore.ts';
import { traceCsv, traceHeader, traceJson, traceRows, traceTokens } from '../state/exportTrace.ts';
import { download, standaloneSvg, svgToPng, tokenTextSvg } from '../viz/svgExport.ts';
import { playgroundStore } from '../state/useStore.ts';

interface Props {
  /** The element holding the view's <svg>; for the routed text (HTML), the SVG is drawn from the run instead. */
  target: RefObject<HTMLElement | null>;
  name: string;
  title: string;
  kind: 'svg' | 'token-text';
}

function fileStem(name: string): string {
  const model =
    playgroundStore
      .getState()
      .share.model.replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^-|-$/g, '') || 'model';
  return `moe-${model}-${name}`;
}

/** The SVG text of a view, or null when it is not on screen. */
export function viewSvg(target: HTMLElement | null, kind: Props['kind'], title: string): string | null {
  const state = playgroundStore.getState();
  if (kind === 'token-text') return state.run ? tokenTextSvg(state.run, state.share.layer, title) : null;
  const svg = target?.querySelector('svg');
  return svg ? standaloneSvg(svg, title) : null;
}

/**
 * The SVG and PNG (2×) buttons for one figure: `svgText` gives the standalone SVG (null when the figure
 * is not on screen); a PNG that cannot be made is reported through `onProblem`. Shared by every view's
 * export bar and the Lenses cards.
 */
export function SvgPngButtons({
  testId,
  title,
  stem,
  svgText,
  onProblem,
}: {
  testId: string;
  title: string;
  stem: string;
  svgText: () => string | null;
  onProblem: (message: string) => void;
}) {
  return (
    <>
      <button
        type="button"
        className="small-button"
        data-testid={`${testId}-svg`}
        aria-label={`Export ${title} as SVG`}
        onClick={() => {
          const svg = svgText();
          if (svg) download(`${stem}.svg`, svg, 'image/svg+xml');
        }}
      >
        SVG
      </button>
      <button
        type="button"
        className="small-button"
        data-testid={`${testId}-png`}
        aria-label={`Export ${title} as PNG at twice the size`}
        onClick={() => {
          const svg = svgText();
          if (!svg) return;
          svgToPng(svg, 2).then(
            (png) => download(`${stem}@2x.png`, png, 'image/png'),
            (error: unknown) =>
              onProblem(
                `The PNG could not be made: ${error instanceof Error ? error.message : String(error)}. Export the SVG instead.`,
              ),
          );
        }}
      >
        PNG
      </button>
    </>
  );
}

export function ExportBar({ target, name, title, kind }: Props) {
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <span className="export-bar" data-testid={`export-${name}`}>
      <SvgPngButtons
        testId={`export-${name}`}
        title={title}
        stem={fileStem(name)}
        svgText={() => viewSvg(target.current, kind, title)}
        onProblem={setProblem}
      />
      {problem && <span className="problem small">{problem}</span>}
    </span>
  );
}

export function TraceExport() {
  const run = usePlayground((s) => s.run);
  const share = usePlayground((s) => s.share);
  if (run?.source !== 'engine') return null;
  const header = () =>
    traceHeader(run, {
      model: share.model + (share.upcycle ? `+${share.upcycle}` : ''),
      seed: share.seed,
      temperature: share.temperature,
      topP: share.topP,
      prompt: share.prompt,
    });
  return (
    <span className="export-bar" data-testid="export-trace">
      <span className="small">routing trace:</span>
      <button
        type="button"
        className="small-button"
        data-testid="export-trace-csv"
        onClick={() => download(`${fileStem('trace')}.csv`, traceCsv(header(), traceRows(run)), 'text/csv')}
      >
        CSV
      </button>
      <button
        type="button"
        className="small-button"
        data-testid="export-trace-json"
        onClick={() =>
          download(
            `${fileStem('trace')}.json`,
            traceJson(header(), traceRows(run), traceTokens(run)),
            'application/json',
          )
        }
      >
        JSON
      </button>
    </span>
  );
}
