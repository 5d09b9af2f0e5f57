// What the page has to tell: link settings that were changed, and the last error with its hint.
import { usePlayground } from '../state/useStore.ts';

export function Notices() {
  const notices = usePlayground((s) => s.notices);
  const error = usePlayground((s) => s.error);
  const dismiss = usePlayground((s) => s.dismissNotice);
  return (
    <>
      {notices.length > 0 && (
        <section className="notices" data-testid="notices" role="status">
          <h2>Some link settings were changed</h2>
          <ul>
            {notices.map((notice, i) => (
              <li key={i}>
                {notice}{' '}
                <button type="button" className="link" onClick={() => dismiss(i)} aria-label="dismiss">
                  ×
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      {error && (
        <section className="error" role="alert" data-testid="error">
          <strong>{error.message}</strong>
          {error.hint && <p>{error.hint}</p>}
        </section>
      )}
    </>
  );
}
