import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, Spinner } from './ui.tsx';

/**
 * A view loaded on first use (a separate chunk), so the initial download is only the shell, login and
 * files (bench/web.ts measures it).
 */
export function lazyView<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  return function LazyView(props: P) {
    const [, setTick] = useState(0);
    const [error, setError] = useState<unknown>(null);
    useEffect(() => {
      if (!loaded) load().then((c) => ((loaded = c), setTick((n) => n + 1)), setError);
    }, []);
    if (error) return <ErrorBox error={error} />;
    if (!loaded) return <Spinner />;
    const View = loaded;
    return <View {...props} />;
  };
}
