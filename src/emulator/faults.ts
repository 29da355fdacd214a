/**
 * Fault injection, per account. Faults that act on a connection (close, stream errors,
 * silence…) hit the account's live connections at once, or, when none is connected, are armed
 * and fire right after the account's next `<success>`. Login faults (`failure`,
 * `withhold-success`) and iq rules are checked as traffic arrives (a `failure` injected while
 * the account is connected is sent at once instead; see fault-actions.ts). Upgrade refusals are checked
 * at the HTTP upgrade, before any account is known (see `takeUpgradeRefusal`).
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { firstChildTag } from './stanza.js';

/** Faults that act on an existing connection. */
export type ConnectionFault =
  | { kind: 'close' }
  | { kind: 'terminate' }
  | { kind: 'xmlstreamend' }
  | { kind: 'replace' }
  | { kind: 'stream-error'; code: number }
  | { kind: 'app-silent'; ms?: number }
  | { kind: 'black-hole'; ms?: number };

/** Faults that decide how a login is answered. */
export type LoginFault = { kind: 'failure'; code: number; times?: number } | { kind: 'withhold-success'; times?: number };

/** A rule that drops, fails or delays matching iqs from the client. */
export interface IqFault {
  kind: 'iq-drop' | 'iq-error' | 'iq-delay';
  /** Match on the iq's xmlns (e.g. `w:p`); absent = any. */
  xmlns?: string;
  /** Match on the iq's first child tag (e.g. `ping`); absent = any. */
  child?: string;
  /** Match on the iq's type (`get`/`set`); absent = any. */
  iqType?: string;
  /** Error code for `iq-error` (default 500). */
  code?: number;
  /** Delay for `iq-delay`. */
  ms?: number;
  /** How many iqs to affect; absent = until cleared. */
  times?: number;
}

/** Refuse the HTTP upgrade with `code`, for `ms` or `times` attempts (absent both = until cleared). */
export interface UpgradeFault {
  kind: 'upgrade-refused';
  code: number;
  ms?: number;
  times?: number;
}

/**
 * The server takes the account's next `times` messages (default 1) and delivers them, but its
 * `<ack class=message>` never reaches the client: the ack a connection dying at the wrong moment
 * loses. With `then: 'terminate'` the TCP connection is destroyed right after the message is
 * taken, so the peer's receipt waits in the offline queue for the next login.
 */
export interface AckDropFault {
  kind: 'ack-drop';
  times?: number;
  then?: 'terminate';
}

/** Every injectable fault. */
export type FaultSpec = ConnectionFault | LoginFault | IqFault | UpgradeFault | AckDropFault;

/** Every fault kind name, for validation. */
export const FAULT_KINDS = [
  'close',
  'terminate',
  'xmlstreamend',
  'replace',
  'stream-error',
  'app-silent',
  'black-hole',
  'failure',
  'withhold-success',
  'upgrade-refused',
  'iq-drop',
  'iq-error',
  'iq-delay',
  'ack-drop',
] as const;

/** True for faults that act on a live connection. */
export function isConnectionFault(fault: FaultSpec): fault is ConnectionFault {
  return ['close', 'terminate', 'xmlstreamend', 'replace', 'stream-error', 'app-silent', 'black-hole'].includes(fault.kind);
}

interface Counted<T> {
  fault: T;
  remaining: number;
  until: number;
}

interface AccountFaults {
  onReady: ConnectionFault[];
  login: Counted<LoginFault>[];
  iq: Counted<IqFault>[];
  ackDrop: Counted<AckDropFault>[];
}

interface ArmedUpgrade extends Counted<UpgradeFault> {
  phone: string;
}

/** The armed faults of every account. */
export class FaultBook {
  private readonly accounts = new Map<string, AccountFaults>();
  private upgrades: ArmedUpgrade[] = [];

  private of(phone: string): AccountFaults {
    let faults = this.accounts.get(phone);
    if (!faults) {
      faults = { onReady: [], login: [], iq: [], ackDrop: [] };
      this.accounts.set(phone, faults);
    }
    return faults;
  }

  /** Arms a connection fault to fire after the account's next `<success>`. */
  armOnReady(phone: string, fault: ConnectionFault): void {
    this.of(phone).onReady.push(fault);
  }

  /** Takes (and removes) the connection faults armed for the next login. */
  takeOnReady(phone: string): ConnectionFault[] {
    const faults = this.of(phone);
    const armed = faults.onReady;
    faults.onReady = [];
    return armed;
  }

  /** Arms a login fault (default: the next login only). */
  armLogin(phone: string, fault: LoginFault): void {
    this.of(phone).login.push({ fault, remaining: fault.times ?? 1, until: Infinity });
  }

  /** Takes the login fault for this login attempt, if one is armed. */
  takeLogin(phone: string): LoginFault | undefined {
    return take(this.of(phone).login, () => true);
  }

  /** Adds an iq rule. */
  addIqRule(phone: string, fault: IqFault): void {
    this.of(phone).iq.push({ fault, remaining: fault.times ?? Infinity, until: Infinity });
  }

  /** The iq rule that applies to `iq` on this account, counting it as used. */
  takeIqRule(phone: string | null, iq: BinaryNode): IqFault | undefined {
    if (phone === null) return undefined;
    return take(this.of(phone).iq, (rule) => iqMatches(rule, iq));
  }

  /** Arms an ack drop for the account's next message(s). */
  armAckDrop(phone: string, fault: AckDropFault): void {
    this.of(phone).ackDrop.push({ fault, remaining: fault.times ?? 1, until: Infinity });
  }

  /** The ack drop that applies to this message of the account, counting it as used. */
  takeAckDrop(phone: string | null): AckDropFault | undefined {
    if (phone === null) return undefined;
    return take(this.of(phone).ackDrop, () => true);
  }

  /** Arms an upgrade refusal attributed to `phone`. */
  armUpgrade(phone: string, fault: UpgradeFault): void {
    const until = fault.ms === undefined ? Infinity : Date.now() + fault.ms;
    this.upgrades.push({ phone, fault, remaining: fault.times ?? Infinity, until });
  }

  /**
   * The status to refuse an upgrade with. The account is unknown at upgrade time, so a
   * connection URL without a `?phone=` hint is refused by any armed refusal; with a hint, only
   * by that account's.
   */
  takeUpgradeRefusal(phoneHint: string | null): number | undefined {
    const now = Date.now();
    this.upgrades = this.upgrades.filter((u) => u.remaining > 0 && u.until > now);
    const armed = this.upgrades.find((u) => phoneHint === null || u.phone === phoneHint);
    if (!armed) return undefined;
    armed.remaining -= 1;
    return armed.fault.code;
  }

  /** Clears every armed fault of `phone` (or of every account). */
  clear(phone?: string): void {
    if (phone === undefined) {
      this.accounts.clear();
      this.upgrades = [];
      return;
    }
    this.accounts.delete(phone);
    this.upgrades = this.upgrades.filter((u) => u.phone !== phone);
  }

  /** What is armed for `phone`, for the control API. */
  describe(phone: string): FaultSpec[] {
    const faults = this.accounts.get(phone);
    const now = Date.now();
    const upgrades = this.upgrades.filter((u) => u.phone === phone && u.remaining > 0 && u.until > now).map((u) => u.fault);
    if (!faults) return upgrades;
    return [...faults.onReady, ...faults.login.map((c) => c.fault), ...faults.iq.map((c) => c.fault), ...faults.ackDrop.map((c) => c.fault), ...upgrades];
  }
}

function take<T>(list: Counted<T>[], predicate: (fault: T) => boolean): T | undefined {
  const index = list.findIndex((c) => c.remaining > 0 && predicate(c.fault));
  if (index < 0) return undefined;
  const counted = list[index]!;
  counted.remaining -= 1;
  if (counted.remaining <= 0) list.splice(index, 1);
  return counted.fault;
}

function iqMatches(rule: IqFault, iq: BinaryNode): boolean {
  if (rule.xmlns !== undefined && iq.attrs.xmlns !== rule.xmlns) return false;
  if (rule.iqType !== undefined && iq.attrs.type !== rule.iqType) return false;
  if (rule.child !== undefined && firstChildTag(iq) !== rule.child) return false;
  return true;
}
