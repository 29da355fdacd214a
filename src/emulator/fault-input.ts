/** Parses a fault from a control API body (`POST /faults`). */
import { Fields } from './control-input.js';
import { FAULT_KINDS, type FaultSpec } from './faults.js';

const MAX_MS = 24 * 3600 * 1000;
const MAX_TIMES = 1_000_000;

/** The account and fault named by a `POST /faults` body. */
export function parseFault(body: Fields): { phone: string; fault: FaultSpec } {
  const phone = body.phone('phone');
  const kind = body.oneOf('kind', FAULT_KINDS);
  switch (kind) {
    case 'close':
    case 'terminate':
    case 'xmlstreamend':
    case 'replace':
      return { phone, fault: { kind } };
    case 'stream-error':
      return { phone, fault: { kind, code: body.int('code', 100, 999) } };
    case 'failure':
      return { phone, fault: { kind, code: body.int('code', 100, 999), ...optional('times', body.optionalInt('times', 1, MAX_TIMES)) } };
    case 'app-silent':
    case 'black-hole':
      return { phone, fault: { kind, ...optional('ms', body.optionalInt('ms', 1, MAX_MS)) } };
    case 'withhold-success':
      return { phone, fault: { kind, ...optional('times', body.optionalInt('times', 1, MAX_TIMES)) } };
    case 'upgrade-refused':
      return {
        phone,
        fault: {
          kind,
          code: body.int('code', 400, 599),
          ...optional('ms', body.optionalInt('ms', 1, MAX_MS)),
          ...optional('times', body.optionalInt('times', 1, MAX_TIMES)),
        },
      };
    case 'ack-drop':
      return {
        phone,
        fault: {
          kind,
          ...optional('times', body.optionalInt('times', 1, MAX_TIMES)),
          ...optional('then', body.has('then') ? body.oneOf('then', ['terminate'] as const) : undefined),
        },
      };
    case 'iq-drop':
    case 'iq-error':
    case 'iq-delay':
      return {
        phone,
        fault: {
          kind,
          ...optional('xmlns', body.optionalString('xmlns', 100)),
          ...optional('child', body.optionalString('child', 100)),
          ...optional('iqType', body.has('iqType') ? body.oneOf('iqType', ['get', 'set'] as const) : undefined),
          ...optional('code', body.optionalInt('code', 100, 999)),
          ...optional('ms', body.optionalInt('ms', 1, MAX_MS)),
          ...optional('times', body.optionalInt('times', 1, MAX_TIMES)),
        },
      };
  }
}

/** `{ [key]: value }` when value is defined, else `{}` (keeps absent fields absent). */
function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
