// Baileys' group events as the connection reports them: who joined, left or changed role, and
// which settings changed. Only what WhatsApp says changed is kept, and never the invite code.
import type { GroupChanges, GroupParticipantsAction, WaEvent } from './types.js';

const ACTIONS: ReadonlySet<string> = new Set<GroupParticipantsAction>(['add', 'remove', 'promote', 'demote', 'modify']);

/** What `group-participants.update` carries (participants are objects in Baileys 7, JIDs before). */
export interface BaileysParticipantsUpdate {
  id: string;
  author?: string | null | undefined;
  participants: ReadonlyArray<string | { id?: string | null }>;
  action: string;
}

/** A `group-participants.update` as a `group_participants` event; null when it names no group or no member. */
export function groupParticipantsEvent(u: BaileysParticipantsUpdate): Extract<WaEvent, { type: 'group_participants' }> | null {
  if (!u.id || !ACTIONS.has(u.action)) return null;
  const participants = (u.participants ?? []).map((p) => (typeof p === 'string' ? p : p?.id)).filter((p): p is string => typeof p === 'string' && p !== '');
  if (participants.length === 0) return null;
  return { type: 'group_participants', group: u.id, action: u.action as GroupParticipantsAction, participants, ...(u.author ? { author: u.author } : {}) };
}

/**
 * One entry of `groups.update` as a `group_updated` event, with only the settings it changed;
 * null when it changed none worth reporting. An entry with the member list is metadata Baileys
 * fetched again (after a "dirty" notice), not a change, and is left out.
 */
export function groupUpdatedEvent(u: Record<string, unknown> & { id?: string | undefined }): Extract<WaEvent, { type: 'group_updated' }> | null {
  if (!u.id || Array.isArray(u.participants)) return null;
  const changes: GroupChanges = {};
  if (typeof u.subject === 'string') changes.subject = u.subject;
  // A cleared description comes as `desc` without a value.
  if ('desc' in u) changes.description = typeof u.desc === 'string' ? u.desc : null;
  for (const key of ['announce', 'restrict', 'memberAddMode', 'joinApprovalMode'] as const) {
    if (typeof u[key] === 'boolean') changes[key] = u[key];
  }
  if (typeof u.ephemeralDuration === 'number') changes.ephemeral = u.ephemeralDuration;
  if (Object.keys(changes).length === 0) return null;
  const author = typeof u.author === 'string' && u.author !== '' ? u.author : undefined;
  return { type: 'group_updated', group: u.id, changes, ...(author ? { author } : {}) };
}
