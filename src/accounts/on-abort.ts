/**
 * Runs fn once when the signal aborts, or at once when it already has. A listener added to an
 * aborted signal never fires: that is how a stop that came between two steps of a connect used to
 * wait out the whole connect timeout. Returns a function that removes the listener.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}
