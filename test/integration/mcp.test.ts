// `wa-supervisor mcp` as an agent host runs it: the real command over stdio, driven by the MCP
// SDK's own client, against a real daemon and the emulator's phones. The agent holds a client
// token for one account with an allowTo list; what it may not do must be refused in words a model
// can act on, and the emulator's peers must show that nothing refused went out.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli-process.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startWorld, type World } from '../helpers/world.js';

const SALES = '15550003001';
const ALLOWED = '15550003002';
const REFUSED = '15550003333';
const WRITER = '15550003004';
const UNKNOWN_LID = '999999999999999@lid';
const TOKEN = 'wst_mcp-test-token-0123456789abcdef';
const CONSUMER = 'agent-inbox';

let world: World;
let sockDir: { dir: string; cleanup: () => void };
let clientSocket: string;
let agent: Client;
let serverStderr = '';

type ToolAnswer = { text: string; isError: boolean; json: Record<string, unknown> | null };

async function tool(name: string, args: Record<string, unknown>): Promise<ToolAnswer> {
  const r = (await agent.callTool({ name, arguments: args })) as { content: Array<{ type: string; text: string }>; isError?: boolean };
  const text = r.content.map((c) => c.text).join('\n');
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // an error line, not JSON
  }
  return { text, isError: r.isError === true, json };
}

/** The agent's environment: the client socket and its token, nothing of the operator's. */
function agentEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(world.env)) if (v !== undefined) env[k] = v;
  return { ...env, WA_SUPERVISOR_SOCKET: clientSocket, ...extra };
}

/** Peers write to SALES; resolves once the daemon has stored every one. */
async function peersWrite(texts: string[]): Promise<void> {
  const ids: string[] = [];
  for (const text of texts) ids.push((await world.emulator.sendInbound({ from: WRITER, to: SALES, text })).id);
  await Promise.all(ids.map((id) => world.waitEvent((e) => e.type === 'message.inbound' && (e as { id?: string }).id === id)));
}

/** Starts a server as a host would, closes its stdin once it serves, and resolves with how it ended. */
async function serveThenCloseStdin(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [BIN, 'mcp'], { env: agentEnv({ WA_SUPERVISOR_TOKEN: TOKEN }), stdio: ['pipe', 'ignore', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (stderr.includes('serving client')) child.stdin.end();
  });
  const [code, signal] = await exited;
  return { code, signal };
}

beforeAll(async () => {
  sockDir = makeTmpDir('wam-');
  clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  world = await startWorld({
    config: (url) => ({
      clientSocket,
      clients: [{ name: 'agent', tokenSha256: createHash('sha256').update(TOKEN).digest('hex'), accounts: ['sales'] }],
      consumers: [{ name: CONSUMER, type: 'stream', accounts: ['sales'] }],
      accounts: [{ id: 'sales', wsUrl: url, allowTo: [ALLOWED] }],
    }),
  });
  await world.pair('sales', SALES);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--client', 'agent'],
    env: agentEnv({ WA_SUPERVISOR_TOKEN: TOKEN }),
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (serverStderr += d.toString('utf8')));
  agent = new Client({ name: 'mcp-test-agent', version: '0' });
  await agent.connect(transport);
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await world?.close();
  sockDir?.cleanup();
});

describe('wa-supervisor mcp', () => {
  it('offers the five client tools and nothing an operator does', async () => {
    const { tools } = await agent.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['acknowledge', 'list_accounts', 'message_status', 'read_inbox', 'send_message']);
    for (const t of tools) expect(t.name).not.toMatch(/approve|reject|retry|cancel|^status$|pair|logout|reconnect|prune|consumers|config|alert/);
    expect(serverStderr).toContain('serving client "agent"');
    expect((await tool('list_accounts', {})).json).toEqual({ client: 'agent', accounts: ['sales'], may: ['send', 'read', 'events'], consumers: [CONSUMER] });
  });

  it('sends to a peer on allowTo, and the message arrives', async () => {
    const sent = await tool('send_message', { account: 'sales', to: `+${ALLOWED}`, text: 'hello from the agent' });
    expect(sent.isError, sent.text).toBe(false);
    expect(sent.json).toMatchObject({ id: expect.any(Number), state: 'queued' });
    await world.emulator.waitForDecrypted(ALLOWED, (m) => m.text === 'hello from the agent');
    const status = await tool('message_status', { id: sent.json!.id });
    expect(status.json).toMatchObject({ id: sent.json!.id, account: 'sales', text: 'hello from the agent' });
    // A kind beyond text, through the same gate: a reaction to that message.
    const reacted = await tool('send_message', { account: 'sales', to: `+${ALLOWED}`, reaction: { messageId: sent.json!.messageId, emoji: '👍' } });
    expect(reacted.isError, reacted.text).toBe(false);
    await world.emulator.waitForDecrypted(ALLOWED, (m) => m.detail?.reaction === '👍');
  });

  it('refuses a peer not on allowTo, an unknown LID, a forged kind and another account, each as a tool error, and none of them arrives', async () => {
    const refused = await tool('send_message', { account: 'sales', to: REFUSED, text: 'refused peer' });
    expect(refused).toMatchObject({ isError: true, text: `denied: ${REFUSED} is not in allowTo of account sales` });
    const lid = await tool('send_message', { account: 'sales', to: UNKNOWN_LID, text: 'unknown lid' });
    expect(lid).toMatchObject({ isError: true, text: expect.stringMatching(/^denied: 999999999999999@lid is not in allowTo of account sales/) });
    const forged = await tool('send_message', { account: 'sales', to: ALLOWED, text: 'forged receipt', kind: 'receipt' });
    expect(forged).toMatchObject({ isError: true, text: expect.stringContaining('Unrecognized key: "kind"') });
    const other = await tool('send_message', { account: 'other', to: ALLOWED, text: 'other account' });
    expect(other).toMatchObject({ isError: true, text: expect.stringMatching(/^forbidden: client "agent" may not use account "other"/) });

    // A message after them, to the same peers, does arrive: had any refused one been sent, it would
    // have arrived before it.
    for (const to of [ALLOWED, REFUSED, UNKNOWN_LID]) await tool('send_message', { account: 'sales', to, text: 'after the refusals' });
    await world.emulator.waitForDecrypted(ALLOWED, (m) => m.text === 'after the refusals');
    expect(world.emulator.peers().map((p) => p.phone)).toEqual([ALLOWED]);
    expect(world.emulator.peerMessages(ALLOWED).filter((m) => m.text !== null).map((m) => m.text)).toEqual(['hello from the agent', 'after the refusals']);
    // and the daemon kept the refusals as denied rows, the forged and the foreign one not at all
    const rows = (await world.client.request<{ messages: Array<{ text: string | null; state: string }> }>('GET', '/v1/messages?account=sales&limit=100')).body.messages;
    expect(rows.filter((r) => r.state === 'denied').map((r) => r.text).sort()).toEqual(['after the refusals', 'after the refusals', 'refused peer', 'unknown lid']);
    expect(rows.map((r) => r.text)).not.toContain('forged receipt');
  });

  it('read_inbox returns what the peers wrote, with the cursor to read on from', async () => {
    await peersWrite(['inbound one', 'inbound two']);
    const first = await tool('read_inbox', { account: 'sales' });
    expect(first.isError, first.text).toBe(false);
    const messages = first.json!.messages as Array<{ from: string; text: string; cursor: string }>;
    expect(messages.map((m) => m.text)).toEqual(['inbound one', 'inbound two']);
    expect(messages[0]!.from).toContain(WRITER);
    expect(first.json!.next).toBe(messages[1]!.cursor);
    const more = await tool('read_inbox', { after: first.json!.next });
    expect(more.json).toMatchObject({ messages: [], next: first.json!.next });
  });

  it('reads a stream consumer, acknowledges, and the next read does not return what was acknowledged', async () => {
    // Drain what earlier tests left for the consumer.
    const before = await tool('read_inbox', { consumer: CONSUMER, limit: 1000 });
    await tool('acknowledge', { consumer: CONSUMER, cursor: before.json!.next });
    await peersWrite(['for the consumer 1', 'for the consumer 2', 'for the consumer 3']);
    const read = await tool('read_inbox', { consumer: CONSUMER });
    const rows = read.json!.messages as Array<{ text: string; cursor: string }>;
    expect(rows.map((m) => m.text)).toEqual(['for the consumer 1', 'for the consumer 2', 'for the consumer 3']);
    expect(read.json!.note).toContain(`cursor "${rows[2]!.cursor}"`);
    const ack = await tool('acknowledge', { consumer: CONSUMER, cursor: rows[1]!.cursor });
    expect(ack.json).toEqual({ consumer: CONSUMER, committed: rows[1]!.cursor });
    const again = await tool('read_inbox', { consumer: CONSUMER });
    expect((again.json!.messages as Array<{ text: string }>).map((m) => m.text)).toEqual(['for the consumer 3']);
    expect(again.json!.committed).toBe(rows[1]!.cursor);
  });

  it('does not start as an operator (no token, even on the operator socket), nor as another client than --client names; ends when its host closes stdin', async () => {
    const [operator, otherName, unknownToken, ended] = await Promise.all([
      runCli(['mcp', '--socket', world.socket], world.env),
      runCli(['mcp', '--client', 'someone-else'], { ...agentEnv(), WA_SUPERVISOR_TOKEN: TOKEN }),
      runCli(['mcp'], { ...agentEnv(), WA_SUPERVISOR_TOKEN: 'wst_not-a-known-token' }),
      serveThenCloseStdin(),
    ]);
    expect(ended).toEqual({ code: 0, signal: null });
    expect(operator.code).toBe(77);
    expect(operator.stdout).toBe('');
    expect(operator.stderr).toMatch(/never runs as an operator/);
    expect(otherName.code).toBe(77);
    expect(otherName.stderr).toMatch(/token belongs to client "agent", not "someone-else"/);
    expect(unknownToken.code).toBe(77);
    expect(unknownToken.stderr).toMatch(/refused the token/);
  });
});
