/** The registry of users, with lookups by phone number, LID and device jid. */
import { createHash } from 'node:crypto';
import { jidDecode } from '@whiskeysockets/baileys';
import { type Companion, User } from './user.js';

/** A resolved device address: the user and the device number on it. */
export interface DeviceRef {
  user: User;
  device: number;
}

const PHONE_PATTERN = /^[1-9][0-9]{4,19}$/;

/** True for a plausible E.164 number without '+' (5–20 digits, no leading zero). */
export function isPhoneNumber(value: string): boolean {
  return PHONE_PATTERN.test(value);
}

/** A stable 15-digit LID for a phone number, so runs are reproducible. */
function lidFor(phone: string): string {
  const hash = BigInt(`0x${createHash('sha256').update(`lid:${phone}`).digest('hex').slice(0, 16)}`);
  return String(10n ** 14n + (hash % (9n * 10n ** 14n)));
}

/** Every user the emulator knows about; peers are created on first mention. */
export class World {
  private readonly byPhone = new Map<string, User>();
  private readonly byLid = new Map<string, User>();

  /** The user with this phone number, if known. */
  user(phone: string): User | undefined {
    return this.byPhone.get(phone);
  }

  /** The user with this phone number, created (as a peer) if unknown. */
  ensureUser(phone: string): User {
    let user = this.byPhone.get(phone);
    if (!user) {
      if (!isPhoneNumber(phone)) throw new Error(`not a phone number: ${phone}`);
      user = new User(phone, lidFor(phone), `Peer ${phone.slice(-4)}`);
      this.byPhone.set(phone, user);
      this.byLid.set(user.lid, user);
    }
    return user;
  }

  /** Users that have at least one companion (accounts). */
  accounts(): User[] {
    return [...this.byPhone.values()].filter((u) => u.companions.size > 0);
  }

  /** All users. */
  users(): User[] {
    return [...this.byPhone.values()];
  }

  /**
   * Resolves a user or device jid in PN (`@s.whatsapp.net`) or LID (`@lid`) form. Unknown phone
   * numbers become peers (anyone is "on WhatsApp" here); unknown LIDs resolve to nothing.
   */
  resolve(jid: string): DeviceRef | undefined {
    const decoded = jidDecode(jid);
    if (!decoded?.user) return undefined;
    const device = decoded.device ?? 0;
    if (decoded.server === 'lid') {
      const user = this.byLid.get(decoded.user);
      return user ? { user, device } : undefined;
    }
    if (decoded.server !== 's.whatsapp.net' || !isPhoneNumber(decoded.user)) return undefined;
    return { user: this.ensureUser(decoded.user), device };
  }

  /** The companion a jid names, if it names one. */
  companion(jid: string): Companion | undefined {
    const ref = this.resolve(jid);
    return ref && ref.device !== 0 ? ref.user.companions.get(ref.device) : undefined;
  }
}
