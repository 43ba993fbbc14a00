// A typed React wrapper around the <liveness-check> element: attributes from props, the
// element's events to callbacks (attached with addEventListener, so it does not depend on how a
// React version maps `on…` props on custom elements).
import { useEffect, useRef } from 'react';
import type {
  LivenessCheck as LivenessElement,
  LivenessErrorDetail,
  LivenessResult,
  LivenessStateDetail,
} from 'liveness-check';
import 'liveness-check'; // defines <liveness-check>

declare module 'react' {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace JSX {
    interface IntrinsicElements {
      'liveness-check': React.DetailedHTMLProps<React.HTMLAttributes<LivenessElement>, LivenessElement> & {
        model?: string;
        session?: string;
        challenge?: string;
        backend?: 'auto' | 'webgpu' | 'cpu';
        'auto-capture'?: string;
        'share-frames'?: string;
      };
    }
  }
}

export interface LivenessCheckProps {
  model?: string;
  session?: string;
  challenge?: string;
  onResult?: (result: LivenessResult) => void;
  onError?: (error: LivenessErrorDetail) => void;
  onStateChange?: (state: LivenessStateDetail) => void;
}

export function LivenessCheck({ model, session, challenge, onResult, onError, onStateChange }: LivenessCheckProps) {
  const ref = useRef<LivenessElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const result = (e: CustomEvent<LivenessResult>) => onResult?.(e.detail);
    const error = (e: CustomEvent<LivenessErrorDetail>) => onError?.(e.detail);
    const state = (e: CustomEvent<LivenessStateDetail>) => onStateChange?.(e.detail);
    el.addEventListener('result', result);
    el.addEventListener('error', error);
    el.addEventListener('state', state);
    return () => {
      el.removeEventListener('result', result as EventListener);
      el.removeEventListener('error', error as EventListener);
      el.removeEventListener('state', state as EventListener);
    };
  }, [onResult, onError, onStateChange]);
  return <liveness-check ref={ref} model={model} session={session} challenge={challenge} />;
}
