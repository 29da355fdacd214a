// Baileys' group notifications as the connection's events: only what changed, never the invite code.
import { describe, expect, it } from 'vitest';
import { groupParticipantsEvent, groupUpdatedEvent } from '../../src/wa/group-events.js';

const G = '120363000000000001@g.us';

describe('groupParticipantsEvent', () => {
  it('keeps the action, the members\' JIDs as the group addresses them, and the author', () => {
    const e = groupParticipantsEvent({
      id: G,
      author: '100000000000001@lid',
      participants: [
        { id: '100000000000002@lid', phoneNumber: '15550000002@s.whatsapp.net', admin: null } as { id: string },
        { id: '100000000000003@lid' },
      ],
      action: 'add',
    });
    expect(e).toEqual({ type: 'group_participants', group: G, action: 'add', participants: ['100000000000002@lid', '100000000000003@lid'], author: '100000000000001@lid' });
  });

  it('takes plain JIDs too, leaves out a missing author, and drops updates without a group, a member or a known action', () => {
    expect(groupParticipantsEvent({ id: G, author: '', participants: ['15550000002@s.whatsapp.net'], action: 'remove' })).toEqual({
      type: 'group_participants',
      group: G,
      action: 'remove',
      participants: ['15550000002@s.whatsapp.net'],
    });
    expect(groupParticipantsEvent({ id: '', participants: ['x@lid'], action: 'add' })).toBeNull();
    expect(groupParticipantsEvent({ id: G, participants: [{ id: null }], action: 'add' })).toBeNull();
    expect(groupParticipantsEvent({ id: G, participants: ['x@lid'], action: 'explode' })).toBeNull();
  });
});

describe('groupUpdatedEvent', () => {
  it('reports only the settings that changed, with the author', () => {
    expect(groupUpdatedEvent({ id: G, subject: 'New name', author: 'a@lid', authorPn: '1@s.whatsapp.net', authorUsername: undefined })).toEqual({
      type: 'group_updated',
      group: G,
      changes: { subject: 'New name' },
      author: 'a@lid',
    });
    expect(groupUpdatedEvent({ id: G, announce: true, restrict: false, memberAddMode: true, joinApprovalMode: false, ephemeralDuration: 86400 })).toEqual({
      type: 'group_updated',
      group: G,
      changes: { announce: true, restrict: false, memberAddMode: true, joinApprovalMode: false, ephemeral: 86400 },
    });
  });

  it('a description set or cleared', () => {
    expect(groupUpdatedEvent({ id: G, desc: 'rules' })?.changes).toEqual({ description: 'rules' });
    expect(groupUpdatedEvent({ id: G, desc: undefined })?.changes).toEqual({ description: null });
  });

  it('never the invite code; nothing for an entry with nothing else, without a group, or a refetch of the whole metadata', () => {
    expect(groupUpdatedEvent({ id: G, inviteCode: 'SECRET', author: 'a@lid' })).toBeNull();
    expect(JSON.stringify(groupUpdatedEvent({ id: G, inviteCode: 'SECRET', subject: 's' }))).not.toContain('SECRET');
    expect(groupUpdatedEvent({ subject: 'x' })).toBeNull();
    expect(groupUpdatedEvent({ id: G, subject: 'Same as ever', participants: [], size: 3 })).toBeNull();
  });
});
