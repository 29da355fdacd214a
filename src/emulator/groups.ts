/**
 * Groups the emulator knows: id, subject, members (simulated peers or accounts) with their admin
 * role, and how the group addresses its members (`lid`, as WhatsApp does for most groups today,
 * or `pn`, phone numbers, as older groups do).
 */
import { randomInt } from 'node:crypto';
import { EmulatorError } from './errors.js';
import type { User } from './user.js';

/** How a group names its members in metadata and message stanzas. */
export type AddressingMode = 'lid' | 'pn';

/** A member's role, as `<participant type>` carries it (none for a plain member). */
export type MemberRole = 'superadmin' | 'admin' | null;

/** One group. */
export class Group {
  /** Members by phone number, in the order they joined. */
  readonly members = new Map<string, { user: User; role: MemberRole }>();
  /** Per sending phone, the companions (`phone.device`) it has given its sender key to. */
  readonly keysGiven = new Map<string, Set<string>>();

  constructor(
    /** The id before `@g.us` (digits). */
    readonly id: string,
    public subject: string,
    readonly creator: User,
    readonly addressingMode: AddressingMode,
    /** Epoch seconds of creation. */
    readonly creation: number,
    public subjectOwner: User,
    public subjectTime: number,
  ) {}

  /** `<id>@g.us`. */
  get jid(): string {
    return `${this.id}@g.us`;
  }

  /** True if `user` is a member now. */
  has(user: User): boolean {
    return this.members.get(user.phone)?.user === user;
  }

  /** A member's JID as this group addresses it (LID or phone number), optionally of one device. */
  memberJid(user: User, device = 0): string {
    const local = this.addressingMode === 'lid' ? user.lid : user.phone;
    const server = this.addressingMode === 'lid' ? 'lid' : 's.whatsapp.net';
    return device === 0 ? `${local}@${server}` : `${local}:${device}@${server}`;
  }

  /** The other identity of a member, as `participant_pn` / `participant_lid` carries it. */
  alternateJid(user: User): string {
    return this.addressingMode === 'lid' ? user.jid : user.lidJid;
  }

  /** The attribute name that carries `alternateJid` on message stanzas. */
  get alternateAttr(): 'participant_pn' | 'participant_lid' {
    return this.addressingMode === 'lid' ? 'participant_pn' : 'participant_lid';
  }
}

/** What `createGroup` takes. */
export interface NewGroup {
  subject: string;
  /** Members' phone numbers (accounts or simulated peers). */
  participants: string[];
  /** Members who are admins; the first (or, without admins, the first participant) created it. */
  admins?: string[];
  addressingMode?: AddressingMode;
  /** The id before `@g.us` (digits; default: a fresh `120363…` id), e.g. to name it in a config written first. */
  id?: string;
}

/** Every group, by id. */
export class GroupBook {
  private readonly groups = new Map<string, Group>();

  /** Creates a group of known users (the caller resolves phones to users). */
  create(request: NewGroup, userOf: (phone: string) => User): Group {
    const phones = [...new Set(request.participants)];
    if (phones.length === 0) throw new EmulatorError(400, 'bad_request', 'participants: at least one phone number', 'participants');
    const admins = [...new Set(request.admins ?? [])];
    const stranger = admins.find((a) => !phones.includes(a));
    if (stranger) throw new EmulatorError(400, 'bad_request', `admins: ${stranger} is not among the participants`, 'admins');
    if (request.id !== undefined && !/^[1-9]\d{4,39}$/.test(request.id)) throw new EmulatorError(400, 'bad_request', 'id: 5–40 digits, no leading 0', 'id');
    if (request.id !== undefined && this.groups.has(request.id)) throw new EmulatorError(409, 'conflict', `id: group ${request.id} exists`, 'id');
    const creator = userOf(admins[0] ?? phones[0]!);
    const now = Math.floor(Date.now() / 1000);
    const group = new Group(request.id ?? this.freshId(), request.subject, creator, request.addressingMode ?? 'lid', now, creator, now);
    for (const phone of phones) {
      const role: MemberRole = phone === creator.phone ? 'superadmin' : admins.includes(phone) ? 'admin' : null;
      group.members.set(phone, { user: userOf(phone), role });
    }
    this.groups.set(group.id, group);
    return group;
  }

  /** The group a `<id>@g.us` JID (or bare id) names, if any. */
  get(jid: string): Group | undefined {
    return this.groups.get(jid.replace(/@g\.us$/, ''));
  }

  /** Groups `user` is a member of. */
  of(user: User): Group[] {
    return [...this.groups.values()].filter((g) => g.has(user));
  }

  /** An id in the style of today's groups (`120363` and 12 more digits), unused so far. */
  private freshId(): string {
    for (;;) {
      const id = `120363${randomInt(1e11, 1e12)}`;
      if (!this.groups.has(id)) return id;
    }
  }
}

/** True for a group JID (`…@g.us`). */
export function isGroupJid(jid: string | undefined): jid is string {
  return jid !== undefined && jid.endsWith('@g.us');
}
