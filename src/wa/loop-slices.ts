// Slices long stretches of synchronous work so the one event loop keeps reading sockets. The
// Signal work of one account (encrypting a message for every device of a large group, building
// sessions from fetched key bundles, app-state sync) runs as chains of promises that resolve at
// once: the loop reads no socket until the whole chain is done, and every other account's
// keepalive answer waits. Each key read of the auth store is a point where such a chain may pause:
// when the loop has been busy for longer than a slice since it last read I/O, the read waits for a
// turn of the loop (setImmediate: after the I/O that is ready), then goes on.
//
// Paused chains go on one per turn of the loop, in the order they paused. Baileys starts the
// encryptions of a group message all at once (Promise.all): their key reads all come before any of
// their work, so the time since the stretch began says nothing yet. Hence one caller at a time: a
// read that goes on at once holds a grant until its own continuation runs, and every read made
// meanwhile (the other chains') waits. While chains wait, a new caller waits behind them, so none
// overtakes the queue.
import { Turns } from '../loop-turns.js';

/** Longest stretch of work, in ms, before a key read lets the loop read I/O. */
export const SLICE_MS = 10;

let stretchStart = 0;
let marked = false;
let pauses = 0;
const turns = new Turns();
/** A caller went on at once and its continuation has not run yet. */
let granted = false;

/**
 * Resolves at once while the current stretch of work is shorter than SLICE_MS, nothing waits and
 * no other caller was just let go; else after turns of the event loop, one waiting caller per turn. A stretch starts at the first
 * call after the loop last reached its check phase.
 */
export function sliceBoundary(): Promise<void> | null {
  const now = performance.now();
  if (!marked) {
    marked = true;
    stretchStart = now;
    setImmediate(() => {
      marked = false;
    });
  }
  if (turns.waiting === 0 && !granted && now - stretchStart < SLICE_MS) {
    granted = true;
    // Queued before the caller's own continuation (its `await` comes after this returns).
    queueMicrotask(() => {
      granted = false;
    });
    return null;
  }
  pauses++;
  return turns.next();
}

/** How often work paused at a slice boundary since the daemon started (status, tests). */
export function slicePauses(): number {
  return pauses;
}
