import type { EffectiveConfig } from '../config/load.js';
import type { Log } from '../log.js';
import type { AlertSink } from './engine.js';
import { CommandSink, WebhookSink, WhatsAppSink, type AlertEnqueuer } from './sinks.js';

/** The configured sinks (the log and the event stream are built into the engine). */
export function buildSinks(cfg: EffectiveConfig, gate: AlertEnqueuer, log: Log): AlertSink[] {
  return (cfg.alerts?.sinks ?? []).map((s) => {
    switch (s.type) {
      case 'webhook':
        return new WebhookSink(s.url, s.secret, log);
      case 'command':
        return new CommandSink(s.argv, log, s.timeoutMs);
      case 'whatsapp':
        return new WhatsAppSink(s.account, s.to, gate, log);
    }
  });
}
