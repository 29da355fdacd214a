/** An in-memory Baileys auth state for tests (no files; `creds` is mutated in place by Baileys). */
import { type AuthenticationState, type SignalDataTypeMap, initAuthCreds } from '@whiskeysockets/baileys';

/** A fresh, unregistered auth state whose keys live in a plain object. */
export function memoryAuthState(): AuthenticationState {
  const store: Record<string, Record<string, unknown>> = {};
  return {
    creds: initAuthCreds(),
    keys: {
      get: async <T extends keyof SignalDataTypeMap>(type: T, ids: string[]) => {
        const found: { [id: string]: SignalDataTypeMap[T] } = {};
        for (const id of ids) {
          const value = store[type]?.[id];
          if (value !== undefined) found[id] = value as SignalDataTypeMap[T];
        }
        return found;
      },
      set: async (data) => {
        for (const [type, entries] of Object.entries(data)) {
          const bucket = (store[type] ??= {});
          for (const [id, value] of Object.entries(entries ?? {})) {
            if (value === null || value === undefined) delete bucket[id];
            else bucket[id] = value;
          }
        }
      },
    },
  };
}
