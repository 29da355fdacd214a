/**
 * A typed client for the control API, for tests that run the emulator in a child process and
 * for users' own black-box tests (it needs nothing but global fetch).
 */
import type { GroupSummary, GroupUpdate } from './emulator.js';
import type { EmulatorEvent } from './event-log.js';
import type { FaultSpec } from './faults.js';
import type { NewGroup } from './groups.js';
import type { MediaKind } from './media-crypto.js';
import type { MediaSummary } from './media-store.js';
import type { StanzaMatch, TimelineEntry } from './timeline.js';
import type { DecryptedMessage, SentMessage } from './user.js';

/** A non-2xx answer from the control API. */
export class ControlApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ControlApiError';
  }
}

/** A file a peer sends through `POST /inbound`, as JSON carries it. */
export interface InboundMediaJson {
  kind: MediaKind;
  base64: string;
  mimetype: string;
  fileName?: string;
  caption?: string;
}

/** A timeline entry as the API returns it. */
export type PublicTimelineEntry = Omit<TimelineEntry, 'node'>;

/** Client for one emulator's control API. */
export class EmulatorControlClient {
  constructor(readonly baseUrl: string) {}

  /** `POST /pair` with a QR text or a pairing code. */
  pair(request: { phone: string; qr?: string; code?: string }): Promise<{ jid: string; lid: string; device: number }> {
    return this.call('POST', '/pair', request);
  }

  /** `POST /faults`. */
  injectFault(phone: string, fault: FaultSpec): Promise<{ applied: 'live' | 'armed'; sessions: number }> {
    return this.call('POST', '/faults?detail=1', { phone, ...fault });
  }

  /** `DELETE /faults` for one account or all. */
  clearFaults(phone?: string): Promise<void> {
    return this.call('DELETE', phone === undefined ? '/faults' : `/faults?phone=${phone}`);
  }

  /** `POST /inbound`: a peer sends a text, or a file (`media`), to an account. */
  inbound(request: { from: string; to: string; text: string; id?: string } | { from: string; to: string; media: InboundMediaJson; id?: string }): Promise<{ id: string; delivered: boolean }> {
    return this.call('POST', '/inbound', request);
  }

  /** `POST /inbound` with `group`: a simulated member sends a text or a file to a group (every account in it receives it). */
  groupInbound(
    request: ({ text: string } | { media: InboundMediaJson }) & { from: string; group: string; to?: string; id?: string },
  ): Promise<{ id: string; delivered: boolean; companions: number }> {
    return this.call('POST', '/inbound', request);
  }

  /** `POST /groups`: creates a group; answers it with its `jid`. */
  createGroup(request: NewGroup): Promise<GroupSummary> {
    return this.call('POST', '/groups', request);
  }

  /** `GET /groups/<jid>`. */
  group(jid: string): Promise<GroupSummary> {
    return this.call('GET', `/groups/${encodeURIComponent(jid)}`);
  }

  /** `POST /groups/<jid>`: adds or removes members or sets the subject, notifying the members. */
  updateGroup(jid: string, update: GroupUpdate): Promise<GroupSummary> {
    return this.call('POST', `/groups/${encodeURIComponent(jid)}`, update);
  }

  /** `POST /receipts`: a peer sends a receipt for a message the account sent. */
  receipt(request: { from: string; to: string; id: string; type?: 'delivery' | 'read' | 'played' }): Promise<void> {
    return this.call('POST', '/receipts', request);
  }

  /** `GET /peers`: every user that decrypted at least one message. */
  peers(): Promise<Array<{ phone: string; received: number }>> {
    return this.call('GET', '/peers');
  }

  /** `GET /peers/<phone>/messages`. */
  peerMessages(phone: string): Promise<DecryptedMessage[]> {
    return this.call('GET', `/peers/${phone}/messages`);
  }

  /** `GET /peers/<phone>/sent`. */
  sentMessages(phone: string): Promise<SentMessage[]> {
    return this.call('GET', `/peers/${phone}/sent`);
  }

  /** `GET /timeline`. */
  timeline(phone?: string, after?: number): Promise<PublicTimelineEntry[]> {
    const query = new URLSearchParams();
    if (phone !== undefined) query.set('phone', phone);
    if (after !== undefined) query.set('after', String(after));
    return this.call('GET', `/timeline?${query}`);
  }

  /** `GET /timeline/wait`: long-polls for the first matching stanza after `after`. */
  waitForStanza(match: Omit<StanzaMatch, 'attrs'> & { after?: number; timeoutMs?: number }): Promise<PublicTimelineEntry> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(match)) if (value !== undefined) query.set(key, String(value));
    return this.call('GET', `/timeline/wait?${query}`);
  }

  /** `GET /events`. */
  events(phone?: string): Promise<EmulatorEvent[]> {
    return this.call('GET', phone === undefined ? '/events' : `/events?phone=${phone}`);
  }

  /** `GET /accounts`. */
  accounts(): Promise<Array<{ phone: string; lid: string; devices: Array<{ device: number; online: number; queued: number }> }>> {
    return this.call('GET', '/accounts');
  }

  /** `POST /idle`: the idle window for one account or the default. */
  setIdleWindow(ms: number, phone?: string): Promise<void> {
    return this.call('POST', '/idle', phone === undefined ? { ms } : { ms, phone });
  }

  /** `GET /media`: every stored media file. */
  media(): Promise<MediaSummary[]> {
    return this.call('GET', '/media');
  }

  /** `GET /media/ca`: the test CA (PEM) of the media server and its `host:port`. */
  mediaCa(): Promise<{ pem: string; host: string }> {
    return this.call('GET', '/media/ca');
  }

  /** `POST /media/tamper`: corrupts a stored file now, or (no path) the next one stored. */
  tamperMedia(directPath?: string): Promise<MediaSummary | { armed: true }> {
    return this.call('POST', '/media/tamper', directPath === undefined ? {} : { directPath });
  }

  /** `POST /latency`: the delay of every frame the emulator sends from now on (0 = none). */
  setLatency(ms: number): Promise<void> {
    return this.call('POST', '/latency', { ms });
  }

  /** `GET /latency`: the current delay in ms. */
  async latency(): Promise<number> {
    return (await this.call<{ ms: number }>('GET', '/latency')).ms;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const response = await fetch(`${this.baseUrl}${path}`, init);
    const data = (await response.json()) as unknown;
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string; field?: string } }).error ?? {};
      throw new ControlApiError(response.status, error.code ?? 'unknown', error.message ?? response.statusText, error.field);
    }
    return data as T;
  }
}
