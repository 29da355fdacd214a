/** Applies injected faults: to live connections now, or armed for later (see faults.ts). */
import type { EmulatorCore } from './core.js';
import { type ConnectionFault, type FaultSpec, isConnectionFault } from './faults.js';
import type { Session } from './session.js';

/** Where an injected fault went. */
export interface FaultOutcome {
  /** `live`: applied to connected sessions now; `armed`: waits for a later connection or iq. */
  applied: 'live' | 'armed';
  /** How many connections it was applied to. */
  sessions: number;
}

/** Performs a connection fault on one session. */
export function applyConnectionFault(core: EmulatorCore, session: Session, fault: ConnectionFault): void {
  session.event(`fault applied: ${JSON.stringify(fault)}`);
  switch (fault.kind) {
    case 'close':
      session.close('fault: close');
      return;
    case 'terminate':
      session.terminate('fault: terminate');
      return;
    case 'xmlstreamend':
      session.xmlStreamEnd();
      return;
    case 'replace':
      session.streamError(440, 'fault: replaced by another login');
      return;
    case 'stream-error':
      if (fault.code === 401) unlink(core, session);
      session.streamError(fault.code, `fault: stream error ${fault.code}`);
      return;
    case 'app-silent':
      session.setAppSilent(fault.ms);
      return;
    case 'black-hole':
      session.setBlackHole(fault.ms);
      return;
  }
}

/** A 401 "device removed" means the phone unlinked the companion: forget it, like WhatsApp. */
function unlink(core: EmulatorCore, session: Session): void {
  if (session.phone === null || session.device === null) return;
  core.world.user(session.phone)?.companions.delete(session.device);
  session.event(`companion ${session.phone}:${session.device} unlinked`);
}

/** Injects a fault for an account. */
export function injectFault(core: EmulatorCore, phone: string, fault: FaultSpec): FaultOutcome {
  core.events.add(phone, null, `fault injected: ${JSON.stringify(fault)}`);
  if (isConnectionFault(fault)) {
    const live = core.sessions.live(phone);
    if (live.length === 0) {
      core.faults.armOnReady(phone, fault);
      return { applied: 'armed', sessions: 0 };
    }
    for (const session of live) applyConnectionFault(core, session, fault);
    return { applied: 'live', sessions: live.length };
  }
  switch (fault.kind) {
    case 'failure': {
      const live = core.sessions.live(phone);
      if (live.length === 0) {
        core.faults.armLogin(phone, fault);
        return { applied: 'armed', sessions: 0 };
      }
      for (const session of live) session.failure(fault.code);
      return { applied: 'live', sessions: live.length };
    }
    case 'withhold-success':
      core.faults.armLogin(phone, fault);
      return { applied: 'armed', sessions: 0 };
    case 'upgrade-refused':
      core.faults.armUpgrade(phone, fault);
      return { applied: 'armed', sessions: 0 };
    case 'iq-drop':
    case 'iq-error':
    case 'iq-delay':
      core.faults.addIqRule(phone, fault);
      return { applied: 'armed', sessions: 0 };
    case 'ack-drop':
      core.faults.armAckDrop(phone, fault);
      return { applied: 'armed', sessions: 0 };
  }
}
