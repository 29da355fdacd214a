/**
 * Small helpers over Baileys' BinaryNode (the decoded stanza) and a compact one-line
 * rendering for the timeline. Encoding and decoding themselves are Baileys' own codec.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';

/** The server's own jid, as stanzas address it. */
export const SERVER_JID = 's.whatsapp.net';

/** The first direct child with `tag`, if any. */
export function child(node: BinaryNode | undefined, tag: string): BinaryNode | undefined {
  return Array.isArray(node?.content) ? node.content.find((c) => c.tag === tag) : undefined;
}

/** Every direct child with `tag`. */
export function children(node: BinaryNode | undefined, tag?: string): BinaryNode[] {
  if (!Array.isArray(node?.content)) return [];
  return tag === undefined ? node.content : node.content.filter((c) => c.tag === tag);
}

/** The node's content as bytes (strings are UTF-8 encoded), or undefined for child lists. */
export function bytesOf(node: BinaryNode | undefined): Buffer | undefined {
  if (!node || node.content === undefined || Array.isArray(node.content)) return undefined;
  return typeof node.content === 'string' ? Buffer.from(node.content, 'utf8') : Buffer.from(node.content);
}

/** The content of child `tag` as bytes. */
export function childBytes(node: BinaryNode | undefined, tag: string): Buffer | undefined {
  return bytesOf(child(node, tag));
}

/** The tag of the first child, or '' (routing key for iqs). */
export function firstChildTag(node: BinaryNode): string {
  return Array.isArray(node.content) ? (node.content[0]?.tag ?? '') : '';
}

/** A big-endian unsigned integer of 1–6 bytes. */
export function readUInt(bytes: Uint8Array | undefined): number | undefined {
  if (!bytes || bytes.length === 0 || bytes.length > 6) return undefined;
  return Buffer.from(bytes).readUIntBE(0, bytes.length);
}

/** A big-endian encoding of `value` in `length` bytes. */
export function uintBytes(value: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  out.writeUIntBE(value, 0, length);
  return out;
}

/** An `<iq type=result>` answering `request`, optionally with children. */
export function iqResult(request: BinaryNode, content?: BinaryNode[]): BinaryNode {
  const node: BinaryNode = { tag: 'iq', attrs: { from: SERVER_JID, type: 'result', id: request.attrs.id ?? '' } };
  if (content && content.length > 0) node.content = content;
  return node;
}

/** An `<iq type=error>` answering `request` with `<error code text/>`. */
export function iqError(request: BinaryNode, code: number, text = 'internal-server-error'): BinaryNode {
  return {
    tag: 'iq',
    attrs: { from: SERVER_JID, type: 'error', id: request.attrs.id ?? '' },
    content: [{ tag: 'error', attrs: { code: String(code), text } }],
  };
}

const MAX_RENDERED_CHILDREN = 8;
const MAX_RENDERED_TEXT = 80;

/**
 * One-line XML-ish rendering: attributes in order, binary content as `[N bytes]`, long child
 * lists cut after a few entries (a prekey upload has 812 children).
 */
export function renderStanza(node: BinaryNode): string {
  const attrs = Object.entries(node.attrs ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${v}"`)
    .join('');
  const content = node.content;
  if (content === undefined || (Array.isArray(content) && content.length === 0)) return `<${node.tag}${attrs}/>`;
  let inner: string;
  if (Array.isArray(content)) {
    const shown = content.slice(0, MAX_RENDERED_CHILDREN).map(renderStanza).join('');
    const hidden = content.length - MAX_RENDERED_CHILDREN;
    inner = hidden > 0 ? `${shown}…(+${hidden} more)` : shown;
  } else if (typeof content === 'string') {
    inner = content.length > MAX_RENDERED_TEXT ? `${content.slice(0, MAX_RENDERED_TEXT)}…` : content;
  } else {
    inner = renderBytes(content);
  }
  return `<${node.tag}${attrs}>${inner}</${node.tag}>`;
}

function renderBytes(bytes: Uint8Array): string {
  const printable = bytes.length > 0 && bytes.length <= MAX_RENDERED_TEXT && bytes.every((b) => b >= 0x20 && b < 0x7f);
  return printable ? Buffer.from(bytes).toString('latin1') : `[${bytes.length} bytes]`;
}
