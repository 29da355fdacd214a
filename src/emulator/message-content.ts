/** Reading the parts of a decrypted `proto.Message` the emulator reports. */
import type { proto } from '@whiskeysockets/baileys';

/** Text and kind of a message: text from `conversation` or `extendedTextMessage.text`. */
export interface MessageSummary {
  text: string | null;
  /** The first content field present, e.g. `extendedTextMessage` or `reactionMessage`. */
  kind: string;
}

/** Summarises a decoded message (decoded messages only carry the fields that were set). */
export function summarise(message: proto.IMessage): MessageSummary {
  const fields = message as Record<string, unknown>;
  const kind = Object.keys(fields).find((k) => k !== 'messageContextInfo' && fields[k] != null) ?? 'empty';
  return { text: message.conversation ?? message.extendedTextMessage?.text ?? null, kind };
}
