import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

describe('createLogger', () => {
  it('writes JSON lines with secrets redacted', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ level: 'info', pretty: false, destination: sink });
    log.info({ sink: { url: 'https://x', secret: 'hunter2' }, headers: { authorization: 'Bearer t' } }, 'hello');
    log.debug('not at info');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ msg: 'hello', level: 30, sink: { url: 'https://x', secret: '[redacted]' }, headers: { authorization: '[redacted]' } });
    expect(lines[0]).not.toContain('hunter2');
  });
});
