// Prometheus metrics (prom-client, on a registry of the daemon's own): what the daemon publishes
// on its bus is counted as it happens (closes, reconnect attempts, alerts, enqueue -> server ack),
// probe round trips are observed as they are answered, and the rest is read when scraped
// (accounts by state, outbox rows by state, consumer lag, event-loop delay). Served on the
// control socket (GET /v1/metrics) and, when `metrics.listen` is set, on a TCP address.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BusEvent, EventBus } from '../events/bus.js';
import type { Awaitable } from '../outbox/backend.js';
import type { LoopHealthSnapshot } from './loop-health.js';
import { slicePauses } from '../wa/loop-slices.js';

/** Where scraped values come from. */
export interface MetricsSources {
  bus: Pick<EventBus, 'subscribe'>;
  accounts: () => ReadonlyArray<{ id: string; state: string }>;
  outboxByState: () => Partial<Record<string, number>> | Promise<Partial<Record<string, number>>>;
  /** When a row was enqueued (epoch ms), for the enqueue -> ack latency. */
  enqueuedAt: (rowId: number) => number | null | Promise<number | null>;
  consumers: () => Awaitable<ReadonlyArray<{ name: string; lag: { unacknowledged: number; oldestAgeMs: number | null } }>>;
  loop: () => LoopHealthSnapshot;
}

const PREFIX = 'wa_supervisor_';

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #probeRtt: Histogram;
  readonly #unsubscribe: () => void;

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    new Gauge({
      name: `${PREFIX}accounts`,
      help: 'Accounts by state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const by = new Map<string, number>();
        for (const a of src.accounts()) by.set(a.state, (by.get(a.state) ?? 0) + 1);
        for (const [state, n] of by) this.set({ state }, n);
      },
    });
    const closes = new Counter({ name: `${PREFIX}account_closes_total`, help: 'Connection closes, by account and close code (or name when there is no code).', labelNames: ['account', 'code'], registers });
    const reconnects = new Counter({ name: `${PREFIX}reconnect_attempts_total`, help: 'Reconnect attempts scheduled after a close, by account.', labelNames: ['account'], registers });
    const alerts = new Counter({ name: `${PREFIX}alerts_raised_total`, help: 'Operator alerts raised, by code.', labelNames: ['code'], registers });
    this.#probeRtt = new Histogram({
      name: `${PREFIX}probe_rtt_seconds`,
      help: 'Round trip of answered keepalive probes, all accounts.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const enqueueToAck = new Histogram({
      name: `${PREFIX}enqueue_to_ack_seconds`,
      help: 'From a message accepted into the outbox to the server acknowledging it.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    new Gauge({
      name: `${PREFIX}outbox_rows`,
      help: 'Outbox rows by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        // A shared store that does not answer: this gauge is left out, the other metrics still scraped.
        const counts = await Promise.resolve(src.outboxByState()).catch(() => null);
        this.reset();
        if (counts) for (const [state, n] of Object.entries(counts)) this.set({ state }, n ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}inbox_consumer_unacknowledged`,
      help: 'Inbox rows a consumer should see and has not acknowledged.',
      labelNames: ['consumer'],
      registers,
      async collect() {
        // A shared store that does not answer: this gauge is left out, the other metrics still scraped.
        const consumers = await Promise.resolve(src.consumers()).catch(() => []);
        this.reset();
        for (const c of consumers) this.set({ consumer: c.name }, c.lag.unacknowledged);
      },
    });
    new Gauge({
      name: `${PREFIX}inbox_consumer_oldest_unacknowledged_seconds`,
      help: 'Age of the oldest row a consumer has not acknowledged (0 when none).',
      labelNames: ['consumer'],
      registers,
      async collect() {
        // A shared store that does not answer: this gauge is left out, the other metrics still scraped.
        const consumers = await Promise.resolve(src.consumers()).catch(() => []);
        this.reset();
        for (const c of consumers) this.set({ consumer: c.name }, (c.lag.oldestAgeMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: `${PREFIX}event_loop_delay_seconds`,
      help: "The daemon's event-loop delay: p99 and max, over the last ten seconds, the last minute and since start.",
      labelNames: ['window', 'stat'],
      registers,
      collect() {
        const s = src.loop();
        for (const [window, d] of [['last_ten_seconds', s.lastTenSeconds], ['last_minute', s.lastMinute], ['since_start', s.sinceStart]] as const) {
          this.set({ window, stat: 'p99' }, d.p99Ms / 1000);
          this.set({ window, stat: 'max' }, d.maxMs / 1000);
        }
      },
    });
    new Counter({
      name: `${PREFIX}loop_slice_pauses_total`,
      help: 'Times long Signal work (a group send, session set-up) paused at a key read so the event loop could read sockets (10 ms slices).',
      registers,
      collect() {
        this.reset();
        this.inc(slicePauses());
      },
    });
    this.#unsubscribe = src.bus.subscribe({ types: ['account.close', 'account.backoff', 'alert', 'message.sent'] }, (e: BusEvent) => {
      switch (e.type) {
        case 'account.close':
          closes.inc({ account: String(e.account), code: String(e.code ?? e.name) });
          return;
        case 'account.backoff':
          reconnects.inc({ account: String(e.account) });
          return;
        case 'alert':
          alerts.inc({ code: String((e.alert as { code?: string } | undefined)?.code ?? 'unknown') });
          return;
        case 'message.sent': {
          if (typeof e.id !== 'number') return;
          const sentAt = Date.now();
          const observe = (at: number | null) => {
            if (at !== null) enqueueToAck.observe(Math.max(0, sentAt - at) / 1000);
          };
          const at = src.enqueuedAt(e.id);
          if (at instanceof Promise) at.then(observe, () => undefined);
          else observe(at);
          return;
        }
      }
    });
  }

  observeProbeRtt(ms: number): void {
    this.#probeRtt.observe(ms / 1000);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  stop(): void {
    this.#unsubscribe();
    this.registry.clear();
  }
}
