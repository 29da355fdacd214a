/**
 * Making this process trust the emulator's media CA, for the two HTTP stacks Baileys uses for
 * media: `node:https` (uploads, through `https.globalAgent` unless the socket config has a
 * `fetchAgent`) and the global `fetch` (downloads, through undici's global dispatcher unless a
 * `dispatcher` is passed). Both get the public roots plus the CA; verification stays on.
 * Test-only: used by the vitest setup file and the preload, never by production code.
 */
import { readFileSync } from 'node:fs';
import { globalAgent } from 'node:https';
import { rootCertificates } from 'node:tls';

/**
 * Where Node's bundled undici keeps its global dispatcher: newer lines (Node 24+) keep the Agent
 * under `.2` (and a compatibility wrapper under `.1`), older ones the Agent under `.1`.
 */
const DISPATCHER_KEYS = [Symbol.for('undici.globalDispatcher.2'), Symbol.for('undici.globalDispatcher.1')];

/** The environment variable the preload reads: the CA as PEM text, or the path of a PEM file. */
export const MEDIA_CA_ENV = 'WA_EMULATOR_MEDIA_CA';

const trusted = new Set<string>();

type DispatcherClass = new (options: { connect: { ca: string[] } }) => unknown;

/** The CAs to use: Node's public roots, NODE_EXTRA_CA_CERTS (a `ca` option replaces both), ours. */
function caList(): string[] {
  const extraFile = process.env.NODE_EXTRA_CA_CERTS;
  let extra: string[] = [];
  if (extraFile) {
    try {
      extra = [readFileSync(extraFile, 'utf8')];
    } catch {
      // Node itself only warns about an unreadable file; so do we, by ignoring it
    }
  }
  return [...rootCertificates, ...extra, ...trusted];
}

/** Adds a CA certificate (PEM) to what `https` requests and the global `fetch` accept. */
export async function trustMediaCa(pem: string): Promise<void> {
  trusted.add(pem);
  const ca = caList();
  globalAgent.options.ca = ca;
  // Node loads its undici (which installs the global dispatcher) on the first fetch; a data:
  // URL loads it without touching the network, and gives us its Agent class.
  const slots = globalThis as Record<symbol, unknown>;
  if (DISPATCHER_KEYS.every((k) => slots[k] === undefined)) await fetch('data:,');
  const key = DISPATCHER_KEYS.find((k) => slots[k] !== undefined);
  const current = key ? (slots[key] as { constructor: DispatcherClass }) : undefined;
  if (!key || !current) throw new Error('cannot find the global fetch dispatcher to trust the emulator media CA');
  slots[key] = new current.constructor({ connect: { ca } });
}

/** The CA certificates added with trustMediaCa. */
export function trustedMediaCas(): string[] {
  return [...trusted];
}

/** A CA from MEDIA_CA_ENV's form (PEM text, or a file path); throws saying what is wrong. */
export function readMediaCa(value: string): string {
  const pem = value.includes('-----BEGIN CERTIFICATE-----') ? value : readFileSync(value, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${MEDIA_CA_ENV} must be a PEM certificate or the path of one`);
  return pem;
}
