// An agent's session with `wa-supervisor mcp`, printed as it runs: the emulator and a daemon in
// their own processes (temporary state), one account paired with an allowTo list, a client token
// for it, and the MCP server started the way an agent host starts it (command, args, env). The
// agent lists the tools, sends to a peer on allowTo, to one that is not and with a forged field,
// checks the first message, and reads what a customer wrote. Each call is shown with the JSON-RPC lines exactly as
// they crossed the server's stdin and stdout (tools/list is summarised: its schemas are long).
// Exit 0 only if the allowed message arrived and the refused one did not.
// Usage: npm run build && node scripts/mcp-session.mjs
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, pairAccount, sleep, startDaemon, startEmulator } from '../bench/lib.mjs';

const SALES = '15550100001';
const CUSTOMER = '15550200001';
const INVENTED = '15550299999'; // not on sales' allowTo: a number an agent made up
const say = (line = '') => process.stdout.write(`${line}\n`);

const token = `wst_${randomBytes(32).toString('base64url')}`;
const sockDir = mkdtempSync(join(tmpdir(), 'wa-mcp-'));
const clientSocket = join(sockDir, 'clients', 'clients.sock');

const emulator = await startEmulator();
const daemon = await startDaemon(emulator, {
  clientSocket,
  clients: [{ name: 'agent', tokenSha256: createHash('sha256').update(token).digest('hex'), accounts: ['sales'], may: ['send', 'read'] }],
  accounts: [{ id: 'sales', wsUrl: emulator.url, allowTo: [CUSTOMER] }],
});
let agent;
let ok = false;
try {
  await pairAccount(daemon, emulator, 'sales', SALES);
  say(`# emulator and daemon running; account "sales" paired as +${SALES}, allowTo [+${CUSTOMER}]`);
  say('# the agent host starts: wa-supervisor mcp --client agent  (env WA_SUPERVISOR_SOCKET=<client socket>, WA_SUPERVISOR_TOKEN=<token>)');

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WA_SUPERVISOR_')));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', '--client', 'agent'],
    env: { ...env, WA_SUPERVISOR_SOCKET: clientSocket, WA_SUPERVISOR_TOKEN: token },
    stderr: 'pipe',
  });
  transport.stderr.on('data', (d) => process.stdout.write(`  [server stderr] ${d}`));
  agent = new Client({ name: 'example-agent', version: '1.0.0' });
  await agent.connect(transport);

  // Show the wire: every line the agent writes to the server, and every line it reads back.
  let showWire = false;
  const send = transport.send.bind(transport);
  transport.send = (message) => {
    if (showWire) say(`→ ${JSON.stringify(message)}`);
    return send(message);
  };
  const receive = transport.onmessage;
  transport.onmessage = (message) => {
    if (showWire) say(`← ${JSON.stringify(message)}`);
    receive(message);
  };

  say('\n## tools/list');
  const { tools } = await agent.listTools();
  for (const t of tools) {
    const props = Object.keys(t.inputSchema.properties ?? {}).map((p) => ((t.inputSchema.required ?? []).includes(p) ? p : `${p}?`));
    say(`  ${t.name}(${props.join(', ')})  additionalProperties: ${t.inputSchema.additionalProperties}`);
  }

  const step = async (title, name, args) => {
    say(`\n## ${title}`);
    showWire = true;
    const result = await agent.callTool({ name, arguments: args });
    showWire = false;
    return result;
  };
  await step('list_accounts', 'list_accounts', {});
  const allowed = await step('send_message to a customer on allowTo', 'send_message', { account: 'sales', to: `+${CUSTOMER}`, text: 'Your order 1042 has shipped.' });
  const refused = await step('send_message to a number not on allowTo', 'send_message', { account: 'sales', to: `+${INVENTED}`, text: 'Hello from sales!' });
  const forged = await step('send_message with a field the tool does not take', 'send_message', { account: 'sales', to: `+${CUSTOMER}`, text: 'read', kind: 'receipt' });

  // The emulator's phones are the truth: wait for the customer's phone to decrypt the message.
  const deadline = Date.now() + 20_000;
  let arrived = [];
  while (Date.now() < deadline) {
    arrived = (await emulator.client.peerMessages(CUSTOMER)).filter((m) => m.text === 'Your order 1042 has shipped.');
    if (arrived.length) break;
    await sleep(100);
  }
  const id = allowed.structuredContent?.id;
  await step('message_status of the allowed message', 'message_status', { id });

  const { id: inboundId } = await emulator.client.inbound({ from: CUSTOMER, to: SALES, text: 'Thanks! When will it arrive?' });
  await daemon.nextEvent((e) => e.type === 'message.inbound' && e.id === inboundId, 20_000).catch(() => {});
  await step('read_inbox', 'read_inbox', { account: 'sales' });

  const invented = await emulator.client.peerMessages(INVENTED);
  say('\n## what the phones saw');
  say(`  +${CUSTOMER}: ${arrived.length} message(s) "${arrived[0]?.text ?? ''}"`);
  say(`  +${INVENTED}: ${invented.length} message(s)`);
  ok = !allowed.isError && arrived.length === 1 && refused.isError === true && forged.isError === true && invented.length === 0;
  say(ok ? '\nOK: the allowed message arrived, the refused one was refused in words and never sent' : '\nFAILED');
} finally {
  await agent?.close();
  await daemon.stop();
  await emulator.stop();
  rmSync(sockDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
