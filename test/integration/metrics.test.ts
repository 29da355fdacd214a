// Prometheus metrics end to end: a real daemon with traffic (a message, a forced close and its
// reconnect, a refused config reload raising an alert, answered keepalive probes), scraped on the
// control socket and on the optional TCP address, and read back with a Prometheus text-format
// parser, which also shows it refuses what is not the format.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { httpUnix } from '../helpers/http-unix.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEER = '15550008300';
const TOKEN = 'wst_metrics-test-client-token-0123456789';

type Family = { name: string; type: string; metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string }> };

function value(families: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  if (!m) return undefined;
  return Number(m.value ?? m.count);
}

describe('metrics', () => {
  it('count closes, reconnects, alerts, probes and enqueue -> ack, and show accounts, outbox rows, consumer lag and the event loop; the same on TCP; operators only', async () => {
    const sockDir = makeTmpDir('wamt-');
    const clientSocket = join(sockDir.dir, 'c', 'clients.sock');
    const w = await newWorld({
      config: (url) => ({
        metrics: { listen: '127.0.0.1:0' },
        clientSocket,
        clients: [{ name: 'bot', tokenSha256: createHash('sha256').update(TOKEN).digest('hex'), accounts: ['main'] }],
        consumers: [{ name: 'reader', type: 'stream' }],
        accounts: [{ id: 'main', wsUrl: url }],
      }),
    });
    try {
      await w.pair('main', MAIN);
      const from = w.events.length;
      const sent = (await w.client.request<{ id: number }>('POST', '/v1/messages', { account: 'main', to: PEER, text: 'counted' })).body;
      await w.waitEvent((e) => e.type === 'message.sent' && e.id === sent.id, { from });
      await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'unread by the consumer' });
      await w.waitEvent((e) => e.type === 'message.inbound', { from });
      w.emulator.injectFault(MAIN, { kind: 'close' });
      await w.waitEvent((e) => e.type === 'account.backoff' && e.account === 'main', { from });
      await w.waitState('main', 'open');
      // A refused reload raises config_reload_failed.
      writeFileSync(w.configFile, '{ not json');
      process.kill(w.daemon.pid, 'SIGHUP');
      await w.waitEvent((e) => e.type === 'alert' && (e.alert as { code: string }).code === 'config_reload_failed', { from });

      // Keepalive probes are answered every second (no event marks them): read until one is counted.
      let families: Family[] = [];
      for (let i = 0; i < 50; i++) {
        const res = await httpUnix(w.socket, 'GET', '/v1/metrics');
        expect(res.status).toBe(200);
        expect(String(res.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
        families = parsePrometheus(res.body) as Family[];
        if ((value(families, 'wa_supervisor_probe_rtt_seconds') ?? 0) > 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(value(families, 'wa_supervisor_probe_rtt_seconds')).toBeGreaterThan(0);
      expect(value(families, 'wa_supervisor_accounts', { state: 'open' })).toBe(1);
      expect(value(families, 'wa_supervisor_account_closes_total', { account: 'main' })).toBeGreaterThanOrEqual(1);
      expect(value(families, 'wa_supervisor_reconnect_attempts_total', { account: 'main' })).toBeGreaterThanOrEqual(1);
      expect(value(families, 'wa_supervisor_alerts_raised_total', { code: 'config_reload_failed' })).toBe(1);
      expect(value(families, 'wa_supervisor_enqueue_to_ack_seconds')).toBe(1);
      const rows = ['sent', 'delivered', 'read'].reduce((n, state) => n + (value(families, 'wa_supervisor_outbox_rows', { state }) ?? 0), 0);
      expect(rows).toBe(1);
      expect(value(families, 'wa_supervisor_inbox_consumer_unacknowledged', { consumer: 'reader' })).toBe(1);
      expect(value(families, 'wa_supervisor_event_loop_delay_seconds', { window: 'since_start', stat: 'max' })).toBeGreaterThan(0);
      expect(families.find((f) => f.name === 'wa_supervisor_process_resident_memory_bytes')).toBeDefined();

      // The TCP address serves the same families, and nothing else.
      const line = await w.daemon.waitForLog((l) => typeof l.metrics === 'string');
      const tcp = await fetch(`http://${String(line.metrics)}/metrics`);
      expect(tcp.status).toBe(200);
      const overTcp = parsePrometheus(await tcp.text()) as Family[];
      expect(overTcp.map((f) => f.name).sort()).toEqual(families.map((f) => f.name).sort());
      expect((await fetch(`http://${String(line.metrics)}/v1/status`)).status).toBe(404);
      expect(String(line.metrics)).toMatch(/^127\.0\.0\.1:\d+$/);

      // A client's token does not open it.
      const bot = new ControlClient({ socket: { path: clientSocket, source: 'flag' }, token: TOKEN });
      const refused = await bot.request('GET', '/v1/metrics').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).status).toBe(403);
    } finally {
      sockDir.cleanup();
    }
  });

  it('the parser used above refuses text that is not the exposition format (the check can fail)', () => {
    expect(() => parsePrometheus('wa_supervisor_accounts{state="open" 1\n')).toThrow();
  });
});
