import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { startPlayground } from './state/useStore.ts';
import { App } from './ui/App.tsx';
import { ErrorBoundary } from './ui/ErrorBoundary.tsx';
import './ui/app.css';

// The controller runs outside React: it starts once, whatever React mounts or re-mounts.
startPlayground();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ErrorBoundary area="the playground">
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
