// `wa-supervisor status`: the daemon and its accounts, from GET /v1/status.
import type { AccountSummary, StatusResponse } from '../../control/wire.js';
import { describeSource } from '../../platform/paths.js';
import { VERSION } from '../../version.js';
import { COMMON_OPTIONS, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { formatDuration, printJson, table, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget, type CliTarget } from '../target.js';

/** Accounts listed one per line at most; above it the table keeps to those that need a look. */
export const SCREENFUL = 40;

/** Help text for `status`. */
export const STATUS_HELP = `Usage: wa-supervisor status [--all] [--json] [--socket PATH] [--config FILE]

Shows the daemon (version, pid, uptime, config file, state directory, socket) and each
account's state. The config file the daemon loaded is shown next to the one this CLI
would use, so a divergence is visible.

  --all    list every account (above ${SCREENFUL} accounts the table lists only those not open,
           after a count per state)
  --json   print {"daemon":{...},"accounts":[...],"cli":{...}} on one line`;


/** The `cli` part of `status --json`: what this CLI resolved. */
export interface CliSide {
  version: string;
  configPath: string | null;
  socket: string;
  socketSource: string;
  configMatchesDaemon: boolean;
}

/** Prints daemon and account status. */
export async function statusCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('status', args, {
    help: COMMON_OPTIONS.help,
    json: COMMON_OPTIONS.json,
    socket: COMMON_OPTIONS.socket,
    config: COMMON_OPTIONS.config,
    all: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${STATUS_HELP}\n`);
    return EXIT.OK;
  }
  const target = resolveCliTarget(values);
  const { body } = await clientFor(target, io.stderr).request<StatusResponse>('GET', '/v1/status');
  const cli = cliSide(target, body);
  if (values.json) {
    printJson(io, { ...body, cli });
    return EXIT.OK;
  }
  io.stdout.write(`${renderStatus(body, cli, target, Date.now(), { all: values.all === true })}\n`);
  return EXIT.OK;
}

function cliSide(target: CliTarget, status: StatusResponse): CliSide {
  return {
    version: VERSION,
    configPath: target.configPath,
    socket: target.socket.path,
    socketSource: describeSource(target.socket.source),
    configMatchesDaemon: target.configPath === status.daemon.configPath,
  };
}

/** The human rendering of a status response. */
export function renderStatus(s: StatusResponse, cli: CliSide, target: CliTarget, now = Date.now(), opts: { all?: boolean } = {}): string {
  const d = s.daemon;
  const lines: string[] = [];
  lines.push(`daemon    wa-supervisor ${d.version}, pid ${d.pid}, up ${formatDuration(d.uptimeMs)}`);
  lines.push(`config    ${d.configPath}`);
  if (!cli.configMatchesDaemon) {
    lines.push(`          ! this CLI would use ${cli.configPath ?? '(no config file found)'}; the daemon runs with the file above`);
  }
  if (target.configProblem) lines.push(`          ! this CLI's config has problems: ${target.configProblem.split('\n')[0]}`);
  lines.push(`state     ${d.stateDir}`);
  lines.push(`socket    ${d.socket}`);
  if (d.previousRunCrashed) lines.push('          ! the previous daemon run did not stop cleanly');
  if (d.eventLoop) {
    const { lastMinute: m, sinceStart: t } = d.eventLoop;
    lines.push(`loop      delay p99 ${m.p99Ms} ms, max ${m.maxMs} ms (last minute); p99 ${t.p99Ms} ms, max ${t.maxMs} ms (since start)`);
  }
  const counts = Object.entries(s.summary.byState)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
  lines.push(`accounts  ${s.summary.accounts}${counts ? ` (${counts})` : ''}`);
  if (s.cluster) {
    // A cluster (store.type "postgres"): this daemon, the live daemons and what each holds.
    const c = s.cluster;
    const live = c.daemons.filter((x) => x.live && !x.stopping);
    lines.push(
      c.error
        ? `cluster   this daemon is ${c.daemon}; ! ${c.error}`
        : `cluster   this daemon is ${c.daemon}; ${live.length} live daemon(s): ${live.map((x) => `${x.id} ${x.accounts}`).join(', ') || 'none'}; lease TTL ${formatDuration(c.ttlMs)}`,
    );
    if (!c.storeOk) lines.push('          ! the shared store does not answer: this daemon has fenced its accounts');
  }
  if (s.inbox) {
    const extra = [s.inbox.undecryptable ? `${s.inbox.undecryptable} undecryptable` : '', s.inbox.ignored ? `${s.inbox.ignored} ignored (allowFrom)` : ''].filter(Boolean);
    lines.push(`inbox     ${s.inbox.messages} messages${extra.length ? `, ${extra.join(', ')}` : ''}, last cursor ${s.inbox.lastCursor}`);
  }
  if (s.accounts.length > 0) {
    lines.push('');
    if (opts.all || s.accounts.length <= SCREENFUL) lines.push(renderAccounts(s.accounts, now));
    else {
      // Thousands of rows help nobody: the counts above, then the accounts that need a look.
      const attention = s.accounts.filter((a) => a.state !== 'open' || a.degraded);
      const shown = attention.slice(0, SCREENFUL);
      lines.push(shown.length ? `${attention.length} account(s) not open or degraded${attention.length > shown.length ? `, the first ${shown.length}` : ''}:` : `all ${s.accounts.length} accounts are open`);
      if (shown.length) lines.push(renderAccounts(shown, now));
      lines.push(`(${s.accounts.length} accounts: --all lists every one, --json prints them all)`);
    }
  }
  return lines.join('\n');
}

/** The accounts table: state and since when, own number, last close, retry, keepalive health. */
export function renderAccounts(accounts: AccountSummary[], now = Date.now()): string {
  const ago = (iso: string | null) => (iso ? `${formatDuration(now - Date.parse(iso))} ago` : '-');
  const rows = accounts.map((a) => [
    a.id,
    a.degraded ? `${a.state} (degraded)` : a.state,
    ago(a.since),
    a.jid ? a.jid.split('@')[0]!.split(':')[0]! : '-',
    a.lastClose ? `${a.lastClose.code ?? a.lastClose.name} ${ago(a.lastClose.at)}${localStall(a.lastClose.loopDelayMaxMs)}` : '-',
    a.reconnect.nextRetryAt ? `in ${formatDuration(Date.parse(a.reconnect.nextRetryAt) - now)} (#${a.reconnect.failures})` : '-',
    a.keepalive ? `${ago(a.keepalive.lastReceivedAt)}, max gap ${formatDuration(a.keepalive.largestSilentGapMs)}` : '-',
    a.queue ? String(a.queue.queued + a.queue.sending + a.queue.unknown) : '-',
  ]);
  // In a cluster, who runs each account and its state there (this daemon's own view is STATE).
  const clustered = accounts.some((a) => a.owner);
  if (clustered) rows.forEach((r, i) => r.push(ownerText(accounts[i]!.owner)));
  const lines = [table(['ACCOUNT', 'STATE', 'SINCE', 'NUMBER', 'LAST CLOSE', 'RETRY', 'LAST HEARD', 'QUEUE', ...(clustered ? ['OWNER'] : [])], rows)];
  for (const a of accounts) {
    if (a.inbox?.undecryptable) lines.push(`! ${a.id}: ${a.inbox.undecryptable} inbound message(s) could not be decrypted (wa-supervisor inbox --status undecryptable)`);
    if (a.degraded?.regularIntervalMs) {
      lines.push(`! ${a.id}: closes at a regular interval of ${formatDuration(a.degraded.regularIntervalMs)} (an idle timeout somewhere?)`);
    }
  }
  return lines.join('\n');
}

/** "d2 (open)", or "-" when no daemon holds the account's lease. */
function ownerText(o: AccountSummary['owner']): string {
  if (!o?.daemon) return '-';
  return o.state ? `${o.daemon} (${o.state})` : o.daemon;
}

/** " after a 38 s local stall" when the daemon's own loop stalled for a second or more before a close. */
function localStall(ms: number | null | undefined): string {
  return typeof ms === 'number' && ms >= 1000 ? ` after a ${formatDuration(ms)} local stall` : '';
}
