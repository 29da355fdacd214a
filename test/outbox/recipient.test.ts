import { describe, expect, it } from 'vitest';
import { normalisePhone, normaliseRecipient } from '../../src/outbox/recipient.js';
import type { Recipient } from '../../src/outbox/recipient.js';

/** The normalised recipient, or a test failure naming the error. */
function ok(raw: string): Recipient {
  const r = normaliseRecipient(raw);
  if ('error' in r) throw new Error(`expected ${JSON.stringify(raw)} to normalise, got error: ${r.error}`);
  return r;
}

/** The error message, or a test failure naming the recipient it produced. */
function err(raw: string): string {
  const r = normaliseRecipient(raw);
  if (!('error' in r)) throw new Error(`expected ${JSON.stringify(raw)} to be refused, got ${JSON.stringify(r)}`);
  return r.error;
}

const PHONE_JID = { jid: '15550001111@s.whatsapp.net', chatType: 'direct', phone: '15550001111' } satisfies Recipient;

describe('normaliseRecipient: phone numbers', () => {
  it.each([
    { name: 'bare digits', raw: '15550001111' },
    { name: 'leading +', raw: '+15550001111' },
    { name: 'spaces', raw: '+1 555 000 1111' },
    { name: 'dashes', raw: '1-555-000-1111' },
    { name: 'parentheses', raw: '+1 (555) 000-1111' },
    { name: 'dots', raw: '1.555.000.1111' },
    { name: 'surrounding whitespace', raw: '  +15550001111 \n' },
    { name: 'tabs and a non-breaking space', raw: '+1\t555\u00a0000 1111' },
    { name: 'a space between + and the digits', raw: '+ 1 555 000 1111' },
    { name: 'mixed punctuation', raw: '+1 (555)-000.1111' },
  ])('$name: $raw', ({ raw }) => {
    expect(normaliseRecipient(raw)).toEqual(PHONE_JID);
  });

  it.each([
    { raw: '1234567', digits: '1234567' }, // 7 digits: the shortest accepted
    { raw: '123456789012345', digits: '123456789012345' }, // 15 digits: the E.164 maximum
    { raw: '+44 20 7946 0958', digits: '442079460958' },
    { raw: '+91 98765-43210', digits: '919876543210' },
  ])('accepts $raw as $digits', ({ raw, digits }) => {
    expect(normaliseRecipient(raw)).toEqual({ jid: `${digits}@s.whatsapp.net`, chatType: 'direct', phone: digits });
  });

  it.each([
    { name: 'too short (6 digits)', raw: '123456' },
    { name: 'too long (16 digits)', raw: '1234567890123456' },
    { name: 'a leading zero', raw: '015550001111' },
    { name: 'an international 00 prefix', raw: '0015550001111' },
    { name: 'letters', raw: '1555000ABCD' },
    { name: 'a + in the middle', raw: '1555+0001111' },
    { name: 'two leading +', raw: '++15550001111' },
    { name: 'only a +', raw: '+' },
    { name: 'only punctuation', raw: '(--)' },
    { name: 'a device suffix without a server', raw: '15550001111:12' },
    { name: 'a slash', raw: '1555/0001111' },
  ])('refuses $name ($raw) and names the input', ({ raw }) => {
    const e = err(raw);
    expect(e).toMatch(/international phone number \(7-15 digits\)/);
    expect(e).toContain(JSON.stringify(raw));
  });

  it.each(['', ' ', '   ', '\t\n'])('refuses an empty or blank string %j', (raw) => {
    expect(err(raw)).toMatch(/empty string/);
  });

  it('spellings of one number all normalise to the same JID', () => {
    const spellings = ['+1 555 000 1111', '15550001111', '15550001111@s.whatsapp.net', '15550001111@c.us', '15550001111:3@s.whatsapp.net'];
    expect(new Set(spellings.map((s) => ok(s).jid))).toEqual(new Set(['15550001111@s.whatsapp.net']));
  });
});

describe('normaliseRecipient: JIDs', () => {
  it.each([
    { name: 'phone JID', raw: '15550001111@s.whatsapp.net', want: PHONE_JID },
    { name: 'legacy @c.us', raw: '15550001111@c.us', want: PHONE_JID },
    { name: 'device suffix', raw: '15550001111:12@s.whatsapp.net', want: PHONE_JID },
    { name: 'device 0', raw: '15550001111:0@s.whatsapp.net', want: PHONE_JID },
    { name: 'device suffix on @c.us', raw: '15550001111:3@c.us', want: PHONE_JID },
    { name: 'agent and device', raw: '15550001111.0:12@s.whatsapp.net', want: PHONE_JID },
    { name: 'upper-case server', raw: '15550001111@S.WhatsApp.NET', want: PHONE_JID },
    { name: 'upper-case @C.US', raw: '15550001111@C.US', want: PHONE_JID },
    { name: 'surrounding whitespace', raw: '  15550001111@s.whatsapp.net  ', want: PHONE_JID },
    { name: 'LID', raw: '123456789012345@lid', want: { jid: '123456789012345@lid', chatType: 'direct', phone: null } },
    { name: 'LID with device', raw: '123456789012345:7@lid', want: { jid: '123456789012345@lid', chatType: 'direct', phone: null } },
    { name: 'upper-case @LID', raw: '42@LID', want: { jid: '42@lid', chatType: 'direct', phone: null } },
    { name: 'one-digit LID', raw: '7@lid', want: { jid: '7@lid', chatType: 'direct', phone: null } },
    { name: '20-digit LID', raw: '12345678901234567890@lid', want: { jid: '12345678901234567890@lid', chatType: 'direct', phone: null } },
    { name: 'group', raw: '120363025246125888@g.us', want: { jid: '120363025246125888@g.us', chatType: 'group', phone: null } },
    {
      name: 'old-style group (creator-timestamp)',
      raw: '15550001111-1600000000@g.us',
      want: { jid: '15550001111-1600000000@g.us', chatType: 'group', phone: null },
    },
    { name: 'upper-case @G.US', raw: '120363025246125888@G.US', want: { jid: '120363025246125888@g.us', chatType: 'group', phone: null } },
  ] satisfies Array<{ name: string; raw: string; want: Recipient }>)('$name: $raw', ({ raw, want }) => {
    expect(normaliseRecipient(raw)).toEqual(want);
  });

  it.each([
    { name: 'an empty user', raw: '@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'a + in the JID', raw: '+15550001111@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'letters', raw: 'alice@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'a too short number', raw: '123456@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'a too long number', raw: '1234567890123456@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'a leading zero', raw: '015550001111@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'spaces in the user', raw: '1 555 000 1111@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'only a device suffix', raw: ':12@s.whatsapp.net', server: 's.whatsapp.net' },
    { name: 'letters at @c.us', raw: 'bob@c.us', server: 'c.us' },
  ])('refuses a phone JID with $name ($raw)', ({ raw, server }) => {
    const e = err(raw);
    expect(e).toContain(`expected digits before @${server}`);
    expect(e).toContain(JSON.stringify(raw));
  });

  it.each([
    { name: 'an empty LID', raw: '@lid' },
    { name: 'letters', raw: 'abc@lid' },
    { name: '21 digits', raw: '123456789012345678901@lid' },
    { name: 'dashes', raw: '123-456@lid' },
  ])('refuses a LID with $name ($raw)', ({ raw }) => {
    const e = err(raw);
    expect(e).toContain('expected digits before @lid');
    expect(e).toContain(JSON.stringify(raw));
  });

  it.each([
    { name: 'an empty id', raw: '@g.us' },
    { name: 'a too short id', raw: '1234@g.us' },
    { name: 'letters', raw: 'family@g.us' },
    { name: 'a 41-character id', raw: `${'1'.repeat(41)}@g.us` },
  ])('refuses a group with $name ($raw)', ({ raw }) => {
    const e = err(raw);
    expect(e).toContain('expected a group id before @g.us');
    expect(e).toContain(JSON.stringify(raw));
  });

  // Regression (fixed): the group-id pattern /^[\d-]{5,40}$/ accepts ids made only of dashes (or with dashes at
  // either end), so "-----@g.us" is stored as a group recipient instead of being refused. Group
  // ids are digits, or two digit runs joined by one dash (creator-timestamp).
  it.each(['-----@g.us', '-12345@g.us', '12345-@g.us'])('refuses a malformed group id %s', (raw) => {
    expect(err(raw)).toContain('expected a group id before @g.us');
  });

  it.each([
    { name: 'an unknown server', raw: '15550001111@example.com' },
    { name: 'an empty server', raw: '15550001111@' },
    { name: 'a second @', raw: '15550001111@s.whatsapp.net@g.us' },
    { name: 'a device suffix after the server', raw: '15550001111@s.whatsapp.net:12' },
    { name: 'an e-mail address', raw: 'alice@example.org' },
  ])('refuses $name ($raw) and says what a recipient looks like', ({ raw }) => {
    const e = err(raw);
    expect(e).toContain('not a WhatsApp recipient');
    expect(e).toContain(JSON.stringify(raw));
    expect(e).toMatch(/s\.whatsapp\.net, lid or g\.us/);
  });

  it('never throws, whatever the input', () => {
    for (const raw of ['@', '@@', ':', ':@', '.@lid', '\u0000', '💬@g.us', '1'.repeat(1000), `${'9'.repeat(500)}@lid`]) {
      expect(() => normaliseRecipient(raw)).not.toThrow();
    }
  });

  it('normalising is idempotent: a normalised JID normalises to itself', () => {
    for (const raw of ['+1 555 000 1111', '15550001111:12@c.us', '99:1@lid', '15550001111-1600000000@g.us']) {
      const once = ok(raw);
      expect(ok(once.jid)).toEqual(once);
    }
  });
});

// Each of these was once accepted: a malformed part was dropped instead of refused, so a string
// that names no device, agent or group became a recipient, and two spellings of a LID ("007" and
// "7") were two recipients to the policy.
describe('normaliseRecipient: malformed parts are refused, not dropped', () => {
  it.each([
    { name: 'letters as the device', raw: '15550001111:abc@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'an empty device', raw: '15550001111:@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'two device parts', raw: '15550001111:1:2@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'a device past uint16', raw: '15550001111:123456@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'letters as the agent', raw: '15550001111_x@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'an empty agent', raw: '15550001111.:1@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'two agent parts', raw: '15550001111_1_2@s.whatsapp.net', want: 'expected digits before @s.whatsapp.net' },
    { name: 'letters as a LID device', raw: '123456789012345:x@lid', want: 'expected digits before @lid' },
    { name: 'a LID with leading zeros', raw: '007@lid', want: 'expected digits before @lid (no leading zero' },
    { name: 'LID zero', raw: '0@lid', want: 'expected digits before @lid' },
    { name: 'a LID device with leading zeros in the user', raw: '0123456789:3@lid', want: 'expected digits before @lid' },
    { name: 'an agent on a group', raw: '120363025246125888_9@g.us', want: 'expected a group id before @g.us' },
    { name: 'a device on a group', raw: '120363025246125888:1@g.us', want: 'expected a group id before @g.us' },
    { name: 'a group of zeros', raw: '00000-00000@g.us', want: 'expected a group id before @g.us' },
    { name: 'a group id with a leading zero', raw: '0120363025246125888@g.us', want: 'expected a group id before @g.us' },
    { name: 'an old-style group with a leading-zero timestamp', raw: '15550001111-0600000000@g.us', want: 'expected a group id before @g.us' },
    { name: 'an old-style group with two dashes', raw: '15550001111-16000-00000@g.us', want: 'expected a group id before @g.us' },
    { name: 'an old-style group with a too short creator', raw: '12345-1600000000@g.us', want: 'expected a group id before @g.us' },
  ])('$name: $raw', ({ raw, want }) => {
    const e = err(raw);
    expect(e).toContain(want);
    expect(e).toContain(JSON.stringify(raw));
  });

  it.each([
    { raw: '15550001111_1:12@s.whatsapp.net', jid: '15550001111@s.whatsapp.net' },
    { raw: '15550001111:65535@s.whatsapp.net', jid: '15550001111@s.whatsapp.net' },
    { raw: '123456789012345_1:7@lid', jid: '123456789012345@lid' },
    { raw: '10@lid', jid: '10@lid' },
    { raw: '120363000000000001@g.us', jid: '120363000000000001@g.us' },
    { raw: '15550001111-160000000@g.us', jid: '15550001111-160000000@g.us' },
  ])('still accepts well-formed $raw as $jid', ({ raw, jid }) => {
    expect(ok(raw).jid).toBe(jid);
  });

  it('one LID has one spelling: "7@lid" is accepted and "007@lid" is not another name for it', () => {
    expect(ok('7@lid').jid).toBe('7@lid');
    expect(ok('7:3@lid').jid).toBe('7@lid');
    expect(err('007@lid')).toMatch(/no leading zero/);
  });
});

describe('normaliseRecipient: chats that are not a person or a group', () => {
  it.each([
    { raw: 'status@broadcast', what: 'a status update or broadcast list' },
    { raw: '1600000000@broadcast', what: 'a status update or broadcast list' },
    { raw: 'STATUS@BROADCAST', what: 'a status update or broadcast list' },
    { raw: '120363000000000000@newsletter', what: 'a channel (newsletter)' },
  ])('refuses $raw: it is $what', ({ raw, what }) => {
    expect(err(raw)).toBe(`cannot send to ${JSON.stringify(raw)}: it is ${what}, not a person or a group`);
  });
});

// Lookalikes print like a valid number or JID; the error names the character so it can be found.
describe('normaliseRecipient: characters that only look like a number', () => {
  it.each([
    { name: 'fullwidth digits', raw: '\uff11\uff15\uff15\uff15\uff10\uff10\uff10\uff14\uff14\uff14\uff14', code: 'U+FF11' },
    { name: 'Arabic-Indic digits', raw: '\u0661\u0665\u0665\u0665\u0660\u0660\u0660\u0664\u0664\u0664\u0664', code: 'U+0661' },
    { name: 'bidi marks around a copied number', raw: '\u202d+15550004444\u202c', code: 'U+202D' },
    { name: 'a zero-width space', raw: '1555\u200b0004444', code: 'U+200B' },
    { name: 'non-breaking hyphens', raw: '+1\u2011555\u20110004444', code: 'U+2011' },
    { name: 'a fullwidth @', raw: '15550004444\uff20s.whatsapp.net', code: 'U+FF20' },
    { name: 'a zero-width space in a LID', raw: '177290488036108\u200b@lid', code: 'U+200B' },
    { name: 'a NUL after a JID', raw: '15550004444@s.whatsapp.net\u0000', code: 'U+0000' },
  ])('refuses $name and names $code', ({ raw, code }) => {
    expect(err(raw)).toContain(`it contains ${code}, which is no part of a number or JID (digits must be ASCII)`);
  });

  it('an error about ASCII input carries no such note; unicode spaces between digits are still read as spaces', () => {
    expect(err('1234567890123456')).not.toMatch(/it contains/);
    expect(err('177290488036108:abc@lid')).not.toMatch(/it contains/);
    expect(ok('+1\u2009555\u3000000\u00a04444').jid).toBe('15550004444@s.whatsapp.net');
  });

  it('overlong numbers and LIDs are refused, not cut', () => {
    expect(err('+1 555 000 4444 12345')).toMatch(/7-15 digits/);
    expect(err('1555000444412345@s.whatsapp.net')).toMatch(/expected digits before @s.whatsapp.net/);
    expect(err('177290488036108177290@lid')).toMatch(/expected digits before @lid/);
  });
});

describe('normalisePhone: the one phone parser (recipients and pairing codes)', () => {
  it.each([
    { raw: '15550001111', want: '15550001111' },
    { raw: '+1 555 000 1111', want: '15550001111' },
    { raw: '+1 (555) 000-1111', want: '15550001111' },
    { raw: '1.555.000.1111', want: '15550001111' },
    { raw: ' +44 20 7946 0958 ', want: '442079460958' },
    // Refused: a "+" anywhere but in front (the pairing route once dropped every "+"), leading zeros, lengths.
    { raw: '1555+0001111', want: null },
    { raw: '++15550001111', want: null },
    { raw: '015550001111', want: null },
    { raw: '123456', want: null },
    { raw: '1234567890123456', want: null },
    { raw: '15550001111@s.whatsapp.net', want: null },
    { raw: '', want: null },
  ])('$raw -> $want', ({ raw, want }) => {
    expect(normalisePhone(raw)).toBe(want);
  });
});
