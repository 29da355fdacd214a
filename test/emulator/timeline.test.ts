// Item 7 (timeline): recording, rendering, cursors, and the event-driven wait.
import { describe, expect, test } from 'vitest';
import { renderStanza } from '../../src/emulator/stanza.js';
import { Timeline } from '../../src/emulator/timeline.js';

const iq = (id: string, xmlns = 'w:p') => ({ tag: 'iq', attrs: { id, xmlns, type: 'get' }, content: [{ tag: 'ping', attrs: {} }] });

describe('rendering', () => {
  test('attributes in order, printable bytes inline, binary as a size, long child lists cut', () => {
    expect(renderStanza(iq('1'))).toBe('<iq id="1" xmlns="w:p" type="get"><ping/></iq>');
    expect(renderStanza({ tag: 'ref', attrs: {}, content: Buffer.from('abc') })).toBe('<ref>abc</ref>');
    expect(renderStanza({ tag: 'enc', attrs: { type: 'pkmsg' }, content: Buffer.from([0, 1, 2]) })).toBe('<enc type="pkmsg">[3 bytes]</enc>');
    const list = { tag: 'list', attrs: {}, content: Array.from({ length: 812 }, () => ({ tag: 'key', attrs: {} })) };
    expect(renderStanza(list)).toBe(`<list>${'<key/>'.repeat(8)}…(+804 more)</list>`);
  });
});

describe('waiting', () => {
  test('finds an entry already recorded, unless it is before the cursor', async () => {
    const timeline = new Timeline();
    timeline.record(1, '1555', 'in', iq('a'));
    expect((await timeline.waitFor({ attrs: { id: 'a' } })).seq).toBe(1);
    const mark = timeline.mark();
    const later = timeline.waitFor({ tag: 'iq' }, { after: mark, timeoutMs: 1_000 });
    timeline.record(1, '1555', 'out', iq('b'));
    expect((await later).node?.attrs.id).toBe('b');
  });

  test('resolves on the first matching future entry (no polling)', async () => {
    const timeline = new Timeline();
    const waiting = timeline.waitFor((e) => e.dir === 'out' && e.stanza.includes('xmlns="usync"'), { timeoutMs: 1_000 });
    timeline.record(1, null, 'out', iq('x', 'encrypt'));
    timeline.record(1, null, 'out', iq('y', 'usync'));
    const entry = await waiting;
    expect(entry).toMatchObject({ seq: 2, dir: 'out', session: 1 });
  });

  test('times out with the last entries in the message, and can be aborted', async () => {
    const timeline = new Timeline();
    timeline.record(7, '1555', 'in', iq('z'));
    await expect(timeline.waitFor({ tag: 'message' }, { timeoutMs: 50 })).rejects.toThrow(/no matching stanza within 50 ms[\s\S]*<iq id="z"/);
    const controller = new AbortController();
    const aborted = timeline.waitFor({ tag: 'message' }, { signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toThrow('wait aborted');
  });
});

describe('bookkeeping', () => {
  test('entries are filtered by account and cursor; a connection learns its account later', () => {
    const timeline = new Timeline();
    timeline.record(1, null, 'in', iq('1'));
    timeline.record(2, '1666', 'in', iq('2'));
    timeline.assignPhone(1, '1555');
    expect(timeline.entries({ phone: '1555' }).map((e) => e.seq)).toEqual([1]);
    expect(timeline.entries({ after: 1 }).map((e) => e.seq)).toEqual([2]);
  });

  test('the log is bounded', () => {
    const timeline = new Timeline(3);
    for (let i = 0; i < 5; i++) timeline.record(1, null, 'in', iq(String(i)));
    expect(timeline.entries().map((e) => e.node?.attrs.id)).toEqual(['2', '3', '4']);
    // Past a compaction too, and a connection named later gets only its own kept entries.
    for (let i = 5; i < 12; i++) timeline.record(i % 2 === 0 ? 2 : 3, null, 'in', iq(String(i)));
    expect(timeline.entries().map((e) => e.node?.attrs.id)).toEqual(['9', '10', '11']);
    timeline.assignPhone(3, '15550001111');
    expect(timeline.entries({ phone: '15550001111' }).map((e) => e.node?.attrs.id)).toEqual(['9', '11']);
    expect(timeline.entries({ after: 11 }).map((e) => e.seq)).toEqual([12]);
  });
});
