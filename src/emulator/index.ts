/**
 * The WhatsApp server emulator: a loopback server that unmodified Baileys connects to, for
 * tests. See docs/emulator.md. Production code must not import this module (or the preload).
 */
export {
  type AccountSummary,
  type DeviceSummary,
  Emulator,
  type EmulatorOptions,
  type GroupSummary,
  type GroupUpdate,
  type PairRequest,
  createEmulator,
} from './emulator.js';
export { DEFAULT_LATENCY_MS, MAX_LATENCY_MS } from './delay-line.js';
export { type EmulatorChild, type EmulatorChildOptions, startEmulatorChild } from './child.js';
export { ControlApiError, EmulatorControlClient, type PublicTimelineEntry } from './control-client.js';
export { runEmulatorCommand } from './cli.js';
export { EmulatorError } from './errors.js';
export type { EmulatorEvent } from './event-log.js';
export type { FaultOutcome } from './fault-actions.js';
export type { ConnectionFault, FaultSpec, IqFault, LoginFault, UpgradeFault } from './faults.js';
export type { GroupInboundText } from './group-inbound.js';
export type { AddressingMode, MemberRole, NewGroup } from './groups.js';
export type { InboundText } from './inbound.js';
export { MediaCa, defaultMediaCaPem } from './media-ca.js';
export { MEDIA_KINDS, type MediaKind } from './media-crypto.js';
export type { DecryptedMedia } from './media-read.js';
export type { MediaSummary } from './media-store.js';
export { MEDIA_CA_ENV, readMediaCa, trustMediaCa, trustedMediaCas } from './media-trust.js';
export type { InboundMedia, SentMedia } from './peer-media.js';
export type { PairResult } from './pairing.js';
export { defaultRootPublicKey, defaultRootSeed, verifyCertChain } from './pki.js';
export { ROOT_ENV, parseRootKey } from './root-key.js';
export { type Direction, type StanzaMatch, Timeline, type TimelineEntry, type WaitOptions } from './timeline.js';
export { trustEmulatorRoot, trustedRoot } from './trust-root.js';
export type { DecryptedMessage, SentMessage } from './user.js';
