// `wa-supervisor alerts`: active alerts and recent notifications.
import type { Alert, AlertNotification } from '../../alerts/engine.js';
import { COMMON_OPTIONS, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, table, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `alerts`. */
export const ALERTS_HELP = `Usage: wa-supervisor alerts [--json]

Active alerts (raised and not recovered) and the recent notifications (alerts, recoveries,
digests), newest first. The same notifications go to the log, the event stream (type "alert")
and the sinks configured under alerts.sinks; never to anyone but the operators.`;

/** Prints alerts. */
export async function alertsCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('alerts', args, COMMON_OPTIONS);
  if (values.help) {
    io.stdout.write(`${ALERTS_HELP}\n`);
    return EXIT.OK;
  }
  const { body } = await clientFor(resolveCliTarget(values), io.stderr).request<{ active: Alert[]; recent: AlertNotification[] }>('GET', '/v1/alerts');
  if (values.json) {
    printJson(io, body);
    return EXIT.OK;
  }
  io.stdout.write(
    body.active.length
      ? `${table(['SEVERITY', 'CODE', 'ACCOUNT', 'SINCE', 'TEXT'], body.active.map((a) => [a.severity, a.code, a.account ?? '-', a.raisedAt, a.text]))}\n`
      : 'no active alerts\n',
  );
  if (body.recent.length) {
    io.stdout.write(`\nrecent:\n${table(['AT', 'TYPE', 'CODE', 'ACCOUNT', 'TEXT'], body.recent.slice(0, 20).map((n) => [n.alert.recoveredAt ?? n.alert.raisedAt, n.type, n.alert.code, n.alert.account ?? '-', n.alert.text]))}\n`);
  }
  return EXIT.OK;
}
