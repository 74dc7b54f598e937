import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data: T | null;
  error: string | null;
  /** Reads again now (after an action). */
  refresh: () => void;
}

/** Calls `load` now and every `everyMs` while mounted; one call at a time; keeps the last good answer. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const busy = useRef(false);
  const loadRef = useRef(load);
  loadRef.current = load;
  const tick = useCallback(async () => {
    if (busy.current) return;
    busy.current = true;
    try {
      setData(await loadRef.current());
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      busy.current = false;
    }
  }, []);
  useEffect(() => {
    setData(null);
    void tick();
    const timer = setInterval(() => void tick(), everyMs);
    return () => clearInterval(timer);
  }, deps);
  return { data, error, refresh: () => void tick() };
}

export function useHashRoute(): string {
  const [hash, setHash] = useState(() => location.hash.slice(1) || '/tasks');
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || '/tasks');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}
