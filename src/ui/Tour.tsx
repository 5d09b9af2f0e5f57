// The guided tour: a short sequence of steps, each a share link plus a text. With no link at all
// it starts on its own (the first screen teaches without a click) and advances after the step's run
// has finished and the reader had time to read — unless reduced motion is asked for or they take over.
import { useEffect, useState } from 'react';
import { usePlayground } from '../state/useStore.ts';
import type { BuiltInModel } from '../state/store.ts';
import { missingModels, type Tour } from '../state/tour.ts';

interface Props {
  tour: Tour;
  builtInModels: BuiltInModel[] | null;
  autoplay: boolean;
  onApply(step: number): void;
  locked: boolean;
}

export function TourPanel({ tour, builtInModels, autoplay, onApply, locked }: Props) {
  const step = usePlayground((s) => s.share.step);
  const compare = usePlayground((s) => s.share.compare);
  const compareSettled = usePlayground((s) => s.compareSettled);
  const activity = usePlayground((s) => s.activity);
  const run = usePlayground((s) => s.run);
  const [wantPlaying, setPlaying] = useState(autoplay);
  const last = tour.steps.length - 1;
  // Playing means: on a step, and not past the last one. Before the tour starts nothing plays.
  const playing = wantPlaying && step >= 0 && step < last;
  const current = step >= 0 ? tour.steps[step] : undefined;
  const missing = current ? missingModels(current, builtInModels) : [];
  // A step has settled once its own run is on screen, and, when it compares, pane B has answered too.
  const settled = activity === 'idle' && run?.source === 'engine' && (!compare || compareSettled);

  // Advance only once the step's own run is on screen (or it cannot run), then after a reading pause.
  useEffect(() => {
    if (!playing) return;
    if (!settled && missing.length === 0) return;
    const timer = setTimeout(() => onApply(step + 1), tour.dwellSeconds * 1000);
    return () => clearTimeout(timer);
  }, [playing, step, settled, missing.length, tour, onApply]);

  // Any key or click outside the tour hands control to the reader.
  useEffect(() => {
    if (!playing) return;
    const stop = (event: Event) => {
      if (!(event.target instanceof Element) || !event.target.closest('[data-testid="tour"]')) setPlaying(false);
    };
    window.addEventListener('pointerdown', stop);
    window.addEventListener('keydown', stop);
    return () => {
      window.removeEventListener('pointerdown', stop);
      window.removeEventListener('keydown', stop);
    };
  }, [playing]);

  /** Play from where the reader is: the first step before the tour started, the first again after the last. */
  const play = () => {
    if (playing) {
      setPlaying(false);
      return;
    }
    setPlaying(true);
    if (step < 0 || step >= last) onApply(0);
  };

  return (
    <section className="panel tour" aria-label="Guided tour" data-testid="tour" data-step={step} data-playing={playing}>
      <div className="tour-head">
        <h2>{tour.title}</h2>
        <fieldset className="buttons" disabled={locked}>
          <legend className="sr-only">Tour controls</legend>
          <button
            type="button"
            data-testid="tour-prev"
            disabled={step <= 0}
            onClick={() => onApply(step - 1)}
            aria-keyshortcuts="PageUp"
          >
            ← Back
          </button>
          <span className="small" aria-live="polite" data-testid="tour-position">
            {step >= 0 ? `step ${step + 1} of ${tour.steps.length}` : `${tour.steps.length} steps`}
          </span>
          <button
            type="button"
            className="primary"
            data-testid="tour-next"
            disabled={step >= last}
            onClick={() => onApply(step + 1)}
            aria-keyshortcuts="PageDown"
          >
            {step < 0 ? 'Start the tour' : 'Next →'}
          </button>
          <button type="button" data-testid="tour-play" aria-pressed={playing} onClick={play}>
            {playing ? 'Pause' : step >= last ? 'Play again' : 'Play'}
          </button>
        </fieldset>
      </div>
      {playing && !settled && missing.length === 0 && (
        <p className="small dim" data-testid="tour-waiting">
          The tour moves on {tour.dwellSeconds} s after this step’s results are on screen
          {compare ? ', both panes included' : ''}.
        </p>
      )}
      {current && (
        <div className="tour-step" aria-live="polite">
          <h3 data-testid="tour-title">{current.title}</h3>
          <p>{current.text}</p>
          {missing.length > 0 && (
            <p className="notice-box" data-testid="tour-missing">
              This step uses the built-in model{missing.length > 1 ? 's' : ''} {missing.join(' and ')}, which{' '}
              {missing.length > 1 ? 'are' : 'is'} not installed on this site, so the page cannot show it; the
              explanation above still holds. Install the models under <code>public/models/</code> to see it live.
            </p>
          )}
          <p className="small">
            <a href={`#${current.link}&step=${step}`} data-testid="tour-link">
              Link to this step
            </a>
          </p>
        </div>
      )}
    </section>
  );
}
