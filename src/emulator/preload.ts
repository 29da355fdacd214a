/**
 * `node --import <dist/emulator/preload.js>`: makes the process's Baileys trust the emulator
 * root given in WA_EMULATOR_ROOT (hex), and its `https`/`fetch` trust the media test CA given in
 * WA_EMULATOR_MEDIA_CA (PEM or a file path; see media-trust.ts). Test-only; production code
 * never imports this.
 *
 * Baileys is resolved from the current working directory first (a user's own bot with its own
 * node_modules) and from this package second; every distinct copy found is patched, because a
 * second copy of Baileys is a different module instance with its own WA_CERT_DETAILS.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MEDIA_CA_ENV, readMediaCa, trustMediaCa } from './media-trust.js';
import { ROOT_ENV, parseRootKey } from './root-key.js';

const mediaCa = process.env[MEDIA_CA_ENV];
if (mediaCa !== undefined && mediaCa !== '') await trustMediaCa(readMediaCa(mediaCa));

const hex = process.env[ROOT_ENV];
if (hex === undefined || hex === '') {
  process.stderr.write(`[wa-emulator preload] ${ROOT_ENV} is not set; Baileys keeps the real WhatsApp root\n`);
} else {
  const root = parseRootKey(hex);
  const bases = [pathToFileURL(join(process.cwd(), 'noop.js')).href, import.meta.url];
  const found = new Set<string>();
  for (const base of bases) {
    try {
      found.add(createRequire(base).resolve('@whiskeysockets/baileys'));
    } catch {
      // not resolvable from this base; try the next
    }
  }
  if (found.size === 0) throw new Error('[wa-emulator preload] cannot resolve @whiskeysockets/baileys');
  for (const path of found) {
    const baileys = (await import(pathToFileURL(path).href)) as { WA_CERT_DETAILS: { PUBLIC_KEY: Buffer } };
    baileys.WA_CERT_DETAILS.PUBLIC_KEY = root;
  }
}
