// An agent that wants to get round the rules: it holds a client token for three accounts (one
// with a deny rule for a person, one with an allowlist, one in shadow mode) and tries every
// spelling of the refused people through every entry point a client has, then again after the
// operator reloads the config. The emulator's peers are the truth: nothing may arrive, and every
// attempt is refused in so many words.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { runCli } from '../helpers/cli-process.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startWorld, type World } from '../helpers/world.js';

const GUARDED = '15550001111';
const LISTED = '15550001112';
const SHADOW = '15550001113';
const PERSON = '15550004444';
/** The LID the emulator gives PERSON (lidFor in src/emulator/world.ts). */
const PERSON_LID_USER = '177290488036108';
const STRANGER = '15550005555';
const ALLOWED = '15550006666';
const HELD = '15550007777';
const TOKEN = 'wst_agent-attack-token-0123456789abcdef';

/** Every way of writing a phone number a sender might try. */
function numberSpellings(n: string): string[] {
  const [cc, a, b, c] = [n.slice(0, 1), n.slice(1, 4), n.slice(4, 7), n.slice(7)];
  const fullwidth = [...n].map((d) => String.fromCharCode(0xff10 + Number(d))).join('');
  const arabicIndic = [...n].map((d) => String.fromCharCode(0x0660 + Number(d))).join('');
  return [
    n,
    `+${n}`,
    `+${cc} ${a} ${b} ${c}`,
    `${cc}-${a}-${b}-${c}`,
    `+${cc} (${a}) ${b}-${c}`,
    ` ${n} `,
    `${n}@s.whatsapp.net`,
    `${n}@S.WHATSAPP.NET`,
    `${n}@c.us`,
    `${n}:3@s.whatsapp.net`,
    `${n}:0@s.whatsapp.net`,
    fullwidth,
    arabicIndic,
    `${n}${'9'.repeat(30)}`,
    `00${n}`,
  ];
}
const LID_SPELLINGS = [`${PERSON_LID_USER}@lid`, `${PERSON_LID_USER}:2@lid`, `${PERSON_LID_USER}@LID`, ` ${PERSON_LID_USER}@lid`];

let world: World;
let sockDir: { dir: string; cleanup: () => void };
let clientSocket: string;
let agent: ControlClient;

beforeAll(async () => {
  sockDir = makeTmpDir('waa-');
  clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  world = await startWorld({
    config: (url) => ({
      clientSocket,
      clients: [{ name: 'agent', tokenSha256: createHash('sha256').update(TOKEN).digest('hex'), accounts: ['guarded', 'listed', 'shadow'] }],
      policy: {
        default: 'allow',
        rules: [
          { action: 'deny', name: 'not-this-person', match: { account: 'guarded', peer: `+${PERSON}` } },
          { action: 'hold', name: 'four-eyes', match: { account: 'guarded', peer: HELD } },
          { action: 'deny', name: 'shadow-mode', match: { account: 'shadow' } },
        ],
      },
      accounts: [
        { id: 'guarded', wsUrl: url },
        { id: 'listed', wsUrl: url, allowTo: [ALLOWED] },
        { id: 'shadow', wsUrl: url },
      ],
    }),
  });
  await world.pair('guarded', GUARDED);
  await world.pair('listed', LISTED);
  await world.pair('shadow', SHADOW);
  agent = new ControlClient({ socket: { path: clientSocket, source: 'flag' }, token: TOKEN });
}, 60_000);
afterAll(async () => {
  await world?.close();
  sockDir?.cleanup();
});

type Outcome = { how: string; status: number; state?: string; reason?: string; message?: string; id?: number };

async function viaApi(account: string, to: string, text: string): Promise<Outcome> {
  try {
    const r = await agent.request<{ id: number; state: string; reason?: string }>('POST', '/v1/messages', { account, to, text });
    return { how: `api ${account} ${JSON.stringify(to)}`, status: r.status, state: r.body.state, ...(r.body.reason ? { reason: r.body.reason } : {}), id: r.body.id };
  } catch (err) {
    if (err instanceof ApiError) return { how: `api ${account} ${JSON.stringify(to)}`, status: err.status, message: err.message };
    throw err;
  }
}

async function viaCli(account: string, to: string, text: string): Promise<Outcome> {
  const r = await runCli(['send', '--account', account, '--to', to, '--text', text, '--json', '--socket', clientSocket], { ...world.env, WA_SUPERVISOR_TOKEN: TOKEN });
  const how = `cli ${account} ${JSON.stringify(to)}`;
  if (r.code === 0) {
    const body = JSON.parse(r.stdout) as { id: number; state: string; reason?: string };
    return { how, status: 202, state: body.state, ...(body.reason ? { reason: body.reason } : {}), id: body.id };
  }
  return { how, status: r.code ?? -1, message: r.stderr.trim() };
}

async function operatorCall(path: string): Promise<Outcome> {
  try {
    const r = await agent.request('POST', path);
    return { how: `POST ${path}`, status: r.status };
  } catch (err) {
    if (err instanceof ApiError) return { how: `POST ${path}`, status: err.status, message: err.message };
    throw err;
  }
}

/** One round of everything the agent tries. */
async function attack(round: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const targets: Array<[string, string]> = [
    ...[...numberSpellings(PERSON), ...LID_SPELLINGS].map((to) => ['guarded', to] as [string, string]),
    ...[...numberSpellings(STRANGER), ...LID_SPELLINGS].map((to) => ['listed', to] as [string, string]),
    ...numberSpellings(ALLOWED).map((to) => ['shadow', to] as [string, string]),
  ];
  // Every spelling through the socket API; through the CLI (a process per send) one spelling of
  // each refused person: the plain number and a LID.
  const viaCliToo = new Set([`+${PERSON}`, `${PERSON_LID_USER}@lid`, `+${STRANGER}`, `${PERSON_LID_USER}:2@lid`, `+${ALLOWED}`]);
  for (const [i, [account, to]] of targets.entries()) {
    out.push(await viaApi(account, to, `${round} ${i}`));
    if (viaCliToo.has(to)) out.push(await viaCli(account, to, `${round} ${i} cli`));
  }
  // the rows it got back: approve a hold, retry or cancel a denial, as a client
  const held = await viaApi('guarded', HELD, `${round} held`);
  out.push(held);
  for (const o of [...out]) {
    if (o.id === undefined) continue;
    for (const op of ['approve', 'retry']) out.push(await operatorCall(`/v1/messages/${o.id}/${op}`));
  }
  // another account than its own, and the operator's commands
  out.push(await viaApi('not-mine', ALLOWED, `${round} other account`));
  for (const path of ['/v1/accounts/guarded/logout', '/v1/accounts/shadow/reconnect', '/v1/messages/prune']) out.push(await operatorCall(path));
  return out;
}

describe('an agent that keeps trying', () => {
  it('gets nothing to a refused peer, by any spelling or entry point, before and after a reload; every attempt is refused clearly', async () => {
    const first = await attack('before');
    const from = world.events.length;
    world.daemon.child.kill('SIGHUP');
    await world.waitEvent((e) => e.type === 'daemon.reloaded', { from });
    const second = await attack('after');
    const all = [...first, ...second];
    // every attempt: refused at the door (4xx, CLI exit 64/1/77) or stored as denied / held
    const through = all.filter((o) => o.status < 300 && o.state !== undefined && !['denied', 'held'].includes(o.state));
    expect(through).toEqual([]);
    const operatorOps = all.filter((o) => o.how.startsWith('POST '));
    expect(operatorOps.length).toBeGreaterThan(10);
    for (const o of operatorOps) expect(o, o.how).toMatchObject({ status: 403, message: expect.stringContaining('operator role') });
    for (const o of all) {
      if (o.status >= 400 && o.status < 500) expect(o.message, o.how).toBeTruthy();
      if (o.state === 'denied') expect(o.reason, o.how).toBeTruthy();
    }
    // the emulator's records: nothing from these accounts reached PERSON, STRANGER, HELD, or anyone from shadow
    for (const peer of [PERSON, STRANGER, HELD, ALLOWED]) expect(world.emulator.peerMessages(peer), peer).toEqual([]);
    console.log(JSON.stringify({ attempts: all.length, refusedAtTheDoor: all.filter((o) => o.status >= 300).length, denied: all.filter((o) => o.state === 'denied').length, held: all.filter((o) => o.state === 'held').length, arrivals: 0 }));
  }, 120_000);
});
