// "Models on this device": what the page keeps (Cache API) from the hub or an address, with sizes,
// when each was last used, open and delete, and the storage used and left.
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import { sourceOfStoreKey, type SourceActions, type SourcesState } from '../state/sources.ts';
import { formatBytes } from './OpenModel.tsx';

function ago(time: number, now: number): string {
  const s = Math.max(0, Math.round((now - time) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(time).toLocaleDateString();
}

export function DeviceModels({
  store,
  actions,
  modelId,
}: {
  store: StoreApi<SourcesState>;
  actions: SourceActions;
  modelId: string | null;
}) {
  const device = useStore(store, (s) => s.device);
  if (!device) return null;
  const now = Date.now();
  return (
    <section className="panel device-models" aria-label="Models on this device" data-testid="device-models">
      <h2>Models on this device</h2>
      {!device.storage && (
        <p className="small">
          This browser keeps no models (no Cache API here, e.g. a private window): each visit downloads again.
        </p>
      )}
      {device.storage && device.models.length === 0 && (
        <p className="small" data-testid="device-empty">
          None yet: a model opened from the hub or an address is kept here, so the next visit needs no network.
        </p>
      )}
      {device.models.length > 0 && (
        <table className="routing-table device-table">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Size</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {device.models.map((m) => {
              const { source } = sourceOfStoreKey(m.source);
              return (
                <tr key={m.source} data-testid="device-model" data-source={m.source}>
                  <td>
                    <strong>{source}</strong>
                    {m.source !== source && <span className="small"> ({m.source.slice(source.length + 1)})</span>}
                    {m.summary && <div className="small">{m.summary}</div>}
                  </td>
                  <td>{formatBytes(m.bytes)}</td>
                  <td>{ago(m.lastUsed, now)}</td>
                  <td className="buttons">
                    <button
                      type="button"
                      data-testid="device-open"
                      disabled={modelId === source}
                      onClick={() => actions.openStored(m)}
                    >
                      Open
                    </button>
                    <button type="button" data-testid="device-delete" onClick={() => actions.removeStored(m.source)}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {device.storage && (
        <p className="small" data-testid="device-usage">
          Models use {formatBytes(device.used)}
          {device.available !== null ? `; ${formatBytes(device.available)} left for this site.` : '.'}
        </p>
      )}
    </section>
  );
}
