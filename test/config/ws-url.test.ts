// One ws-URL test for the config check and `accounts add`.
import { describe, expect, it } from 'vitest';
import { isWsUrl } from '../../src/config/ws-url.js';
import { ConfigFileSchema } from '../../src/config/schema.js';

describe('isWsUrl', () => {
  it.each([
    ['ws://127.0.0.1:41233/ws/chat', true],
    ['wss://web.whatsapp.com/ws/chat', true],
    ['WSS://example.org', true],
    ['http://x', false],
    ['https://web.whatsapp.com/ws/chat', false],
    ['ws//missing-colon', false],
    ['', false],
    ['not a url', false],
  ])('%j -> %s, and the config check agrees', (url, ok) => {
    expect(isWsUrl(url)).toBe(ok);
    expect(ConfigFileSchema.safeParse({ accounts: [{ id: 'a', wsUrl: url }] }).success).toBe(ok);
  });
});
