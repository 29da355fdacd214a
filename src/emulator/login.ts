/**
 * What the server does with a client's handshake payload: a registration gets `pair-device`
 * (see pairing.ts); a login is checked against the paired companion's Noise key and answered
 * with `<success>` (or with an injected `<failure>`), replacing any older connection of the
 * same device with a 440 conflict, as WhatsApp does.
 */
import type { proto } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { applyConnectionFault } from './fault-actions.js';
import { startQrPairing } from './pairing.js';
import type { Session } from './session.js';

/** Routes a finished handshake to registration or login. */
export async function onClientPayload(core: EmulatorCore, session: Session, payload: proto.ClientPayload): Promise<void> {
  if (payload.devicePairingData && !payload.username) {
    startQrPairing(core, session, payload.devicePairingData);
    return;
  }
  login(core, session, String(payload.username ?? ''), payload.device ?? 0);
}

function login(core: EmulatorCore, session: Session, phone: string, device: number): void {
  const user = core.world.user(phone);
  const companion = user?.companions.get(device);
  if (!user || !companion) {
    session.event(`login for unknown device ${phone}:${device}; answering failure 401`);
    session.failure(401);
    return;
  }
  if (!session.clientStatic?.equals(companion.noiseKey)) {
    session.event(`login for ${phone}:${device} with the wrong noise key; answering failure 401`);
    session.failure(401);
    return;
  }
  session.bind(phone, device);
  session.setIdleWindow(core.idleWindowFor(phone));
  const fault = core.faults.takeLogin(phone);
  if (fault?.kind === 'failure') {
    session.event(`login answered with injected failure ${fault.code}`);
    session.failure(fault.code);
    return;
  }
  for (const older of core.sessions.live(phone, device)) {
    if (older !== session) {
      older.event(`replaced by connection ${session.id}`);
      core.replaced.set(`${phone}:${device}`, (core.replaced.get(`${phone}:${device}`) ?? 0) + 1);
      older.streamError(440, 'replaced by a newer login');
    }
  }
  session.state = 'ready';
  if (fault?.kind === 'withhold-success') {
    session.event('login: <success> withheld by fault');
    return;
  }
  session.send({
    tag: 'success',
    attrs: {
      t: String(Math.floor(Date.now() / 1000)),
      props: '1',
      abprops: '1',
      location: 'emu',
      creation: String(Math.floor(companion.pairedAt / 1000)),
      lid: `${user.lid}:${device}@lid`,
    },
  });
  session.event('logged in');
  for (const armed of core.faults.takeOnReady(phone)) applyConnectionFault(core, session, armed);
}
