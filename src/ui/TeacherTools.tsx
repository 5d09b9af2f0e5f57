// Teacher controls: choose controls to hide or lock for the class (they travel in the link),
// presenter and embed switches, and the embed code for an iframe.
import { useState } from 'react';
import { usePlayground } from '../state/useStore.ts';
import { CONTROL_NAMES, formatShareFragment, type ControlName } from '../state/url.ts';

export function embedCode(url: string): string {
  const escaped = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<iframe src="${escaped}" title="MoE Playground" width="960" height="640" style="border:1px solid #ccc;border-radius:6px" loading="lazy" allow="clipboard-write"></iframe>`;
}

export function TeacherTools() {
  const share = usePlayground((s) => s.share);
  const setShare = usePlayground((s) => s.setShare);
  const [message, setMessage] = useState<string | null>(null);
  const embedUrl = `${location.origin}${location.pathname}#${formatShareFragment({ ...share, embed: true })}`;
  const code = embedCode(embedUrl);
  const toggle = (list: 'hide' | 'lock', name: ControlName) => {
    const current = share[list];
    setShare({ [list]: current.includes(name) ? current.filter((n) => n !== name) : [...current, name] });
  };
  return (
    <details className="panel teacher" data-testid="teacher-tools">
      <summary>Teacher tools: hide or lock controls, presenter mode, embed</summary>
      <div className="teacher-grid">
        <fieldset>
          <legend>Controls in the link</legend>
          <table className="small">
            <thead>
              <tr>
                <th scope="col">control</th>
                <th scope="col">hide</th>
                <th scope="col">lock</th>
              </tr>
            </thead>
            <tbody>
              {CONTROL_NAMES.map((name) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>
                    <input
                      type="checkbox"
                      data-testid={`hide-${name}`}
                      aria-label={`hide ${name}`}
                      checked={share.hide.includes(name)}
                      onChange={() => toggle('hide', name)}
                    />
                  </td>
                  <td>
                    <input
                      type="checkbox"
                      data-testid={`lock-${name}`}
                      aria-label={`lock ${name}`}
                      checked={share.lock.includes(name)}
                      onChange={() => toggle('lock', name)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </fieldset>
        <div>
          <label className="check">
            <input
              type="checkbox"
              data-testid="presenter-toggle"
              checked={share.presenter}
              onChange={(e) => setShare({ presenter: e.target.checked })}
              aria-keyshortcuts="p"
            />{' '}
            Presenter mode (large type, high contrast)
          </label>
          <label className="check">
            <input
              type="checkbox"
              data-testid="compare-toggle"
              checked={share.compare}
              onChange={(e) => setShare({ compare: e.target.checked })}
              aria-keyshortcuts="c"
            />{' '}
            Compare view
          </label>
          <label>
            Embed code (the current experiment, without page chrome)
            <textarea readOnly rows={4} value={code} data-testid="embed-code" onFocus={(e) => e.target.select()} />
          </label>
          <div className="buttons">
            <button
              type="button"
              data-testid="copy-embed"
              onClick={() =>
                navigator.clipboard?.writeText(code).then(
                  () => setMessage('Embed code copied.'),
                  () => setMessage('Select the code above and copy it.'),
                ) ?? setMessage('Select the code above and copy it.')
              }
            >
              Copy embed code
            </button>
            <a href={embedUrl} target="_blank" rel="noreferrer">
              open the embed view
            </a>
            {message && <span className="share-message">{message}</span>}
          </div>
        </div>
      </div>
    </details>
  );
}
