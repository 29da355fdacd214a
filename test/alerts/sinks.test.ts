import { createServer, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertNotification } from '../../src/alerts/engine.js';
import { CommandSink, SIGNATURE_HEADER, WebhookSink, WhatsAppSink, signBody } from '../../src/alerts/sinks.js';
import { tmpDirs } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach);
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

const note: AlertNotification = {
  type: 'alert',
  alert: { id: 'x', code: 'conflict', severity: 'critical', account: 'a', text: 'account a was replaced', raisedAt: '2026-11-21T00:00:00.000Z', details: {} },
};

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; resolve: () => void }> = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        const l = JSON.parse(chunk.toString()) as Record<string, unknown>;
        lines.push(l);
        for (const w of waiters.splice(0)) (w.pred(l) ? w.resolve() : waiters.push(w));
        cb();
      },
    }),
  );
  const waitFor = (pred: (l: Record<string, unknown>) => boolean) =>
    lines.some(pred) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve }));
  return { log, lines, waitFor };
}

async function server(handler: (req: IncomingMessage, body: string) => number): Promise<string> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.statusCode = handler(req, body);
      res.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => s.close(() => r())));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}/hook`;
}

describe('WebhookSink', () => {
  it('POSTs the notification as JSON with an HMAC-SHA256 signature of the body', async () => {
    let got: { sig: string | undefined; body: string } | undefined;
    let done!: () => void;
    const arrived = new Promise<void>((r) => (done = r));
    const url = await server((req, body) => {
      got = { sig: req.headers[SIGNATURE_HEADER] as string | undefined, body };
      done();
      return 204;
    });
    new WebhookSink(url, 'a-secret-of-16-chars', pino({ level: 'silent' })).deliver(note);
    await arrived;
    expect(JSON.parse(got!.body)).toEqual(note);
    expect(got!.sig).toBe(signBody('a-secret-of-16-chars', got!.body));
  });

  it('retries a failing webhook a bounded number of times, then drops the notification', async () => {
    let hits = 0;
    const url = await server(() => (++hits, 500));
    const { log, waitFor } = capturingLog();
    new WebhookSink(url, 'a-secret-of-16-chars', log, [10, 20]).deliver(note);
    await waitFor((l) => l.msg === 'webhook unreachable; notification dropped after its retries');
    expect(hits).toBe(3); // the first try and two retries
  });

  it('does not block delivery to other sinks while a webhook is down (deliver returns at once)', () => {
    const sink = new WebhookSink('http://127.0.0.1:1/hook', 'a-secret-of-16-chars', pino({ level: 'silent' }), [60_000]);
    const t0 = Date.now();
    for (let i = 0; i < 500; i++) sink.deliver(note);
    expect(Date.now() - t0).toBeLessThan(500);
    sink.close();
  });
});

describe('CommandSink', () => {
  it('runs the program with the notification JSON on stdin', async () => {
    const out = join(tmp(), 'got.json');
    const { log, waitFor } = capturingLog();
    const script = `let s='';process.stdin.on('data',d=>s+=d).on('end',()=>require('fs').writeFileSync(${JSON.stringify(out)},s))`;
    new CommandSink([process.execPath, '-e', script], log).deliver(note);
    await waitFor((l) => l.msg === 'alert command done');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(note);
  });

  it('kills a command that hangs at its timeout', async () => {
    const { log, waitFor } = capturingLog();
    new CommandSink([process.execPath, '-e', 'setInterval(() => {}, 1000)'], log, 300).deliver(note);
    await waitFor((l) => l.msg === 'alert command did not finish in time; killed');
    await waitFor((l) => l.msg === 'alert command failed' && l.signal === 'SIGKILL');
  });
});

describe('WhatsAppSink', () => {
  it('queues one message of kind "alert" per configured operator, through the gate', async () => {
    const calls: unknown[] = [];
    const gate = { enqueue: async (i: unknown) => (calls.push(i), { row: { state: 'queued', reason: null } }) };
    new WhatsAppSink('main', ['15550009999', '15550008888'], gate, pino({ level: 'silent' })).deliver(note);
    expect(calls).toEqual([
      { account: 'main', to: '15550009999', text: '[wa-supervisor] CRITICAL (a): account a was replaced', kind: 'alert', client: 'alert-router' },
      { account: 'main', to: '15550008888', text: '[wa-supervisor] CRITICAL (a): account a was replaced', kind: 'alert', client: 'alert-router' },
    ]);
  });
});
