// What an outbox row sends. Text stays the plain `text` it always was; every other kind is a
// content object stored with the row (media by the sha256 of its file in the media store, a
// reply, reaction, edit or delete by the message it points at, as resolved at enqueue). Kept
// free of Baileys: src/wa/ turns it into a WhatsApp message when the row goes out.

/** Kinds of media a message can carry. */
export const MEDIA_KINDS = ['image', 'video', 'audio', 'document', 'sticker'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

/** A file in the media store, as a row names it. */
export interface MediaFile {
  /** Hex sha256 of the file's bytes: its name in the store, and what the recipient must get. */
  sha256: string;
  bytes: number;
  mimetype: string;
  fileName?: string;
}

/** A message in the same chat that a reaction, edit or delete points at. */
export interface MessageRef {
  /** Its WhatsApp message id. */
  id: string;
  /** True for a message this account sent. */
  fromMe: boolean;
  /** In a group: who wrote it (a message of ours: absent). */
  participant?: string;
}

/** The message a reply quotes, with what the quote shows. */
export interface QuotedRef extends MessageRef {
  /** The quoted text (or caption); null when it had none (the quote then shows its kind only). */
  text: string | null;
}

interface Replyable {
  replyTo?: QuotedRef;
}

/** Everything a row can send. */
export type OutboundContent =
  | ({ type: 'text'; text: string } & Replyable)
  | ({ type: MediaKind; media: MediaFile; caption?: string; voice?: boolean } & Replyable)
  | ({ type: 'location'; latitude: number; longitude: number; name?: string; address?: string } & Replyable)
  | ({ type: 'contact'; displayName: string; vcard: string } & Replyable)
  | { type: 'reaction'; target: MessageRef; emoji: string }
  | { type: 'edit'; target: MessageRef; text: string }
  | { type: 'delete'; target: MessageRef };

/** The policy kind of a row: `message` for text (as before), else the content's type. */
export type ContentKind = 'message' | Exclude<OutboundContent['type'], 'text'>;

export function kindOf(content: OutboundContent): ContentKind {
  return content.type === 'text' ? 'message' : content.type;
}

/** The text a row shows (`text` in the API): the text, caption, edited text or reaction emoji; '' for none. */
export function displayText(content: OutboundContent): string {
  switch (content.type) {
    case 'text':
    case 'edit':
      return content.text;
    case 'reaction':
      return content.emoji;
    case 'location':
      return content.name ?? '';
    case 'contact':
      return content.displayName;
    case 'delete':
      return '';
    default:
      return content.caption ?? '';
  }
}

/** The media file a content needs from the store, if any. */
export function mediaOf(content: OutboundContent): MediaFile | null {
  return 'media' in content ? content.media : null;
}

/** True for content that is plain text with nothing else (what rows from before held). */
export function isPlainText(content: OutboundContent): content is { type: 'text'; text: string } {
  return content.type === 'text' && !content.replyTo;
}
