// Slices long stretches of synchronous work so the one event loop keeps reading sockets. The
// Signal work of one account (encrypting a message for every device of a large group, building
// sessions from fetched key bundles, app-state sync) runs as chains of promises that resolve at
// once: the loop reads no socket until the whole chain is done, and every other account's
// keepalive answer waits. Each key read of the auth store is a point where such a chain may pause:
// when the loop has been busy for longer than a slice since it last read I/O, the read waits one
// turn of the loop first (setImmediate: after the I/O that is ready), then goes on.

/** Longest stretch of work, in ms, before a key read lets the loop read I/O. */
export const SLICE_MS = 10;

let stretchStart = 0;
let marked = false;
let pauses = 0;

/**
 * Resolves at once while the current stretch of work is shorter than SLICE_MS, else after one
 * turn of the event loop. A stretch starts at the first call after the loop last reached its
 * check phase (every pause, and every turn of the loop, ends one).
 */
export function sliceBoundary(): Promise<void> | null {
  const now = performance.now();
  if (!marked) {
    marked = true;
    stretchStart = now;
    setImmediate(() => {
      marked = false;
    });
    return null;
  }
  if (now - stretchStart < SLICE_MS) return null;
  pauses++;
  return new Promise((resolve) => setImmediate(resolve));
}

/** How often work paused at a slice boundary since the daemon started (status, tests). */
export function slicePauses(): number {
  return pauses;
}
