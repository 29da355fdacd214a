/** Every open connection, with lookups by account and by pairing ref. */
import type { Session } from './session.js';

/** Live connections of the emulator. */
export class SessionRegistry {
  private readonly sessions = new Map<number, Session>();
  private readonly refs = new Map<string, Session>();
  private nextId = 1;

  /** A fresh connection id. */
  allocateId(): number {
    return this.nextId++;
  }

  /** Adds a new connection. */
  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  /** Forgets a closed connection and its pairing refs. */
  remove(session: Session): void {
    this.sessions.delete(session.id);
    for (const [ref, owner] of this.refs) if (owner === session) this.refs.delete(ref);
  }

  /** The connection with this id, if still open. */
  byId(id: number): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every open connection. */
  all(): Session[] {
    return [...this.sessions.values()];
  }

  /** Logged-in connections of an account (optionally one device). */
  live(phone: string, device?: number): Session[] {
    return this.all().filter(
      (s) => s.state === 'ready' && s.phone === phone && (device === undefined || s.device === device),
    );
  }

  /** Connections of an account in any state (including a pairing one). */
  ofAccount(phone: string): Session[] {
    return this.all().filter((s) => s.phone === phone && s.state !== 'closed');
  }

  /** Registers QR refs handed to a registering connection. */
  addRefs(session: Session, refs: string[]): void {
    for (const ref of refs) this.refs.set(ref, session);
  }

  /** The registering connection a QR ref was handed to. */
  byRef(ref: string): Session | undefined {
    return this.refs.get(ref);
  }

  /** Connections waiting for a QR scan or pairing code. */
  registering(): Session[] {
    return this.all().filter((s) => s.state === 'registering');
  }
}
