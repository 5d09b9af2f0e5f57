// The `?` help sheet: every keyboard shortcut, in a modal dialog that Escape closes.
import { useEffect, useRef } from 'react';

export const SHORTCUTS: [string, string][] = [
  ['?', 'show or hide this help'],
  ['g', 'generate from the prompt'],
  ['Esc', 'stop the run / close this sheet'],
  ['n · d', 'native · dense routing'],
  ['1 … 9', 'top-k routing with k = 1 … 9'],
  ['h', 'threshold routing'],
  ['← →', 'previous · next token'],
  ['[ ]', 'previous · next MoE layer'],
  ['v', 'next view (paths, probabilities, load)'],
  ['a · f', 'ablate · force the selected token’s first-choice expert at this layer'],
  ['u', 'undo the last intervention change'],
  ['c', 'compare view on/off'],
  ['p', 'presenter mode on/off'],
  ['s', 'export the current view as SVG'],
  ['l', 'copy the share link'],
  ['PageDown · PageUp', 'next · previous tour step (presenter clickers send these)'],
];

export function HelpSheet({ open, onClose }: { open: boolean; onClose(): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} className="help-sheet" data-testid="help-sheet" aria-labelledby="help-title" onClose={onClose}>
      <h2 id="help-title">Keyboard shortcuts</h2>
      <table>
        <tbody>
          {SHORTCUTS.map(([keys, what]) => (
            <tr key={keys}>
              <th scope="row">
                <kbd>{keys}</kbd>
              </th>
              <td>{what}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="small">
        Shortcuts work whenever the focus is not in a text field. Every control is also reachable with Tab.
      </p>
      <button type="button" onClick={onClose} data-testid="help-close" autoFocus>
        Close
      </button>
    </dialog>
  );
}
