// How Baileys' auth state is written as text, for both auth stores (SQLite, wa/auth-store.ts, and
// PostgreSQL, store/pg-auth-store.ts): BufferJSON for creds and keys, app-state sync keys revived
// as their protobuf objects, fresh creds for an account with none.
import { BufferJSON, initAuthCreds, proto, type AuthenticationCreds, type SignalDataTypeMap } from '@whiskeysockets/baileys';

export type { AuthenticationCreds, AuthenticationState, SignalDataSet, SignalDataTypeMap } from '@whiskeysockets/baileys';

/** Creds or a key value as stored text. */
export function encodeAuth(value: unknown): string {
  return JSON.stringify(value, BufferJSON.replacer);
}

/** Stored creds as Baileys uses them. */
export function decodeCreds(text: string): AuthenticationCreds {
  return JSON.parse(text, BufferJSON.reviver) as AuthenticationCreds;
}

/** A stored key value as Baileys uses it. */
export function decodeKey<T extends keyof SignalDataTypeMap>(type: T, text: string): SignalDataTypeMap[T] {
  let value = JSON.parse(text, BufferJSON.reviver) as unknown;
  if (type === 'app-state-sync-key') value = proto.Message.AppStateSyncKeyData.fromObject(value as object);
  return value as SignalDataTypeMap[T];
}

/** Creds for an account that has none (a first pairing). */
export function freshCreds(): AuthenticationCreds {
  return initAuthCreds();
}

/** True when creds completed pairing (a `me` identity). */
export function hasIdentity(creds: AuthenticationCreds): boolean {
  return creds.me !== undefined && creds.me !== null;
}
