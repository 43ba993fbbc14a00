import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { LivenessCheck } from './LivenessCheck';

function App() {
  const [outcome, setOutcome] = useState<string>('');
  const [live, setLive] = useState<boolean | null>(null);
  return (
    <main>
      <h1>Check that you are here</h1>
      <LivenessCheck
        model="/models/default.onnx"
        onResult={(r) => {
          setLive(r.live);
          setOutcome(r.live ? 'Live person seen.' : 'Not accepted.');
        }}
        onError={(e) => setOutcome(e.message)}
      />
      <p id="outcome" aria-live="polite" data-live={live === null ? undefined : String(live)}>
        {outcome}
      </p>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
