// The memory baselines for bench/accounts: N bare Baileys sockets in one process, each paired
// through the emulator. Two modes:
// - `defaults`: Baileys' default options and its multi-file auth in a temp dir (what a bot
//   written from Baileys' README does);
// - `like-daemon`: the options the daemon passes to makeWASocket (src/wa/baileys-connection.ts:
//   history declined, not marked online, same browser, keepalive and timeouts) and the auth state
//   in one SQLite database with creds and keys rows, as the daemon keeps it. What is left between
//   this and the daemon is the daemon itself (outbox, supervision, control socket, keepalive probes).
// Reads commands on stdin: "add <phone>" pairs one more socket and answers
// {"type":"open","count":N} when it is open.
// Usage: node --import <emulator preload> bench/bare-baileys-many.mjs WS_URL AUTH_DIR [defaults|like-daemon]
import makeWASocket, { Browsers, BufferJSON, initAuthCreds, proto, useMultiFileAuthState } from '@whiskeysockets/baileys';
import Database from 'better-sqlite3';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pino } from 'pino';

const [url, authRoot, mode = 'defaults'] = process.argv.slice(2);
if (mode !== 'defaults' && mode !== 'like-daemon') throw new Error(`unknown mode ${mode}`);
const socks = [];
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const logger = pino({ level: 'silent' });

// like-daemon: one database for every socket, keys read and written per call (no in-memory copy).
let db = null;
if (mode === 'like-daemon') {
  db = new Database(join(authRoot, 'auth.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS creds (account TEXT PRIMARY KEY, creds TEXT NOT NULL);
           CREATE TABLE IF NOT EXISTS keys (account TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (account, type, id)) WITHOUT ROWID;`);
}

function sqliteAuthState(account) {
  const row = db.prepare('SELECT creds FROM creds WHERE account = ?').get(account);
  const creds = row ? JSON.parse(row.creds, BufferJSON.reviver) : initAuthCreds();
  const getKey = db.prepare('SELECT value FROM keys WHERE account = ? AND type = ? AND id = ?');
  const putKey = db.prepare('INSERT INTO keys (account, type, id, value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value');
  const delKey = db.prepare('DELETE FROM keys WHERE account = ? AND type = ? AND id = ?');
  const state = {
    creds,
    keys: {
      get: async (type, ids) => {
        const out = {};
        for (const id of ids) {
          const r = getKey.get(account, type, id);
          if (!r) continue;
          let value = JSON.parse(r.value, BufferJSON.reviver);
          if (type === 'app-state-sync-key' && value) value = proto.Message.AppStateSyncKeyData.fromObject(value);
          out[id] = value;
        }
        return out;
      },
      set: async (data) => {
        db.transaction(() => {
          for (const [type, entries] of Object.entries(data)) {
            for (const [id, value] of Object.entries(entries)) {
              if (value) putKey.run(account, type, id, JSON.stringify(value, BufferJSON.replacer));
              else delKey.run(account, type, id);
            }
          }
        }).immediate();
      },
    },
  };
  const saveCreds = () => db.prepare('INSERT INTO creds (account, creds) VALUES (?, ?) ON CONFLICT DO UPDATE SET creds = excluded.creds').run(account, JSON.stringify(creds, BufferJSON.replacer));
  return { state, saveCreds };
}

/** The options src/wa/baileys-connection.ts passes (connectTimeoutMs is the daemon's default, 20 s). */
const DAEMON_OPTIONS = {
  browser: Browsers.macOS('Chrome'),
  connectTimeoutMs: 20_000,
  defaultQueryTimeoutMs: 20_000,
  keepAliveIntervalMs: 30_000,
  markOnlineOnConnect: false,
  syncFullHistory: false,
  shouldSyncHistoryMessage: ({ syncType }) => syncType !== proto.HistorySync.HistorySyncType.FULL && syncType !== proto.HistorySync.HistorySyncType.RECENT,
  generateHighQualityLinkPreview: false,
};

async function add(phone) {
  const { state, saveCreds } = mode === 'like-daemon' ? sqliteAuthState(phone) : await useMultiFileAuthState(join(authRoot, phone));
  const connect = () => {
    const sock = makeWASocket({ auth: state, waWebSocketUrl: url, logger, ...(mode === 'like-daemon' ? DAEMON_OPTIONS : {}) });
    sock.ev.on('creds.update', saveCreds);
    sock.ev.on('connection.update', ({ connection, qr, lastDisconnect }) => {
      if (qr) say({ type: 'qr', phone, qr });
      if (connection === 'open') {
        socks.push(sock);
        say({ type: 'open', phone, count: socks.length });
      }
      if (connection === 'close' && lastDisconnect?.error?.output?.statusCode === 515) connect();
    });
  };
  connect();
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, phone] = line.trim().split(' ');
  if (cmd === 'add') void add(phone);
});
say({ type: 'ready', mode });
