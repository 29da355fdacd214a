// Types for delivery-check.mjs (the checker behind npm run chaos and npm run demo).

export declare const ALERT_PREFIX: string;

/** Who may receive what. */
export interface DeliveryWorld {
  accounts: Array<{ id: string; phone: string; allowTo?: string[]; shadow?: boolean }>;
  operators: string[];
  /** Numbers a policy rule refuses to every account. */
  forbidden?: string[];
}

/** A send the daemon accepted. */
export interface AcceptedSend {
  account: string;
  to: string;
  messageId: string;
  text?: string;
}

/** What a peer decrypted (GET /peers/<phone>/messages). */
export interface ReceivedMessage {
  id: string;
  from: string;
  text: string | null;
  copies: number;
}

export interface DeliveryFinding {
  kind: 'alertToPeer' | 'policyViolation' | 'unexpected' | 'lost' | 'peerDuplicate';
  peer: string;
  from: string;
  id: string;
  text: string | null;
  reason: string;
}

export interface DeliveryCheck {
  sent: number;
  delivered: number;
  lost: number;
  peerDuplicates: number;
  wireDuplicates: number;
  alertsToOperators: number;
  alertsToPeers: number;
  policyViolations: number;
  unexpected: number;
  findings: DeliveryFinding[];
}

export declare function checkDeliveries(world: DeliveryWorld, accepted: AcceptedSend[], received: Record<string, ReceivedMessage[]>): DeliveryCheck;

export declare function collectReceived(
  emulatorClient: { peers(): Promise<Array<{ phone: string }>>; peerMessages(phone: string): Promise<ReceivedMessage[]> },
  alsoPeers?: string[],
): Promise<Record<string, ReceivedMessage[]>>;

/** Who may write to whom: an account with `allowFrom` stores everyone else's messages as `ignored`. */
export interface InboxWorld {
  accounts: Array<{ id: string; phone: string; allowFrom?: string[] }>;
}

/** A message a peer sent (GET /peers/<phone>/sent, with the peer as `from`). */
export interface PeerSent {
  from: string;
  id: string;
  to: string;
  text: string;
  at?: number;
  status: 'queued' | 'sent' | 'delivered' | 'read';
}

/** An inbox row as GET /v1/inbox shows it (the fields the check reads). */
export interface InboxRowJson {
  cursor: string;
  id: string;
  account: string;
  chat: string;
  from: string;
  status: 'ok' | 'undecryptable' | 'ignored';
  text?: string | null;
  [field: string]: unknown;
}

/** A row a stream consumer was handed: which connection, and the cursor acknowledged (ack answered) when it came. */
export interface ConsumerDelivery {
  cursor: string;
  id: string;
  account: string;
  chat: string;
  status?: string;
  connection: number;
  committed: string | number;
}

export interface InboxFinding {
  kind: 'inboundLost' | 'inboundDuplicate' | 'inboundWrongStatus' | 'inboxUnexpected' | 'consumerMissed' | 'consumerDuplicateAfterAck' | 'consumerGap' | 'consumerIgnored';
  account: string | null;
  chat: string | null;
  id: string | null;
  cursor: string | null;
  text: string | null;
  reason: string;
}

export interface InboxCheck {
  inboundSent: number;
  inboundStored: number;
  inboundLost: number;
  /** Lost although the emulator shows them receipted (delivered/read): must be 0 even in principle. */
  inboundLostReceipted: number;
  inboundIgnored: number;
  inboundUndecryptable: number;
  inboundWrongStatus: number;
  /** Extra rows of one message (account and id), in one chat or under two spellings of it. */
  inboundDuplicates: number;
  inboxUnexpected: number;
  consumerReceived?: number;
  consumerMissed?: number;
  consumerDuplicatesAfterAck?: number;
  consumerRedelivered?: number;
  consumerGaps?: number;
  consumerIgnored?: number;
  findings: InboxFinding[];
}

export declare function checkInbox(
  world: InboxWorld,
  sent: PeerSent[],
  inbox: InboxRowJson[],
  consumer?: { accounts?: string[]; deliveries: ConsumerDelivery[] },
): InboxCheck;

export declare function collectSent(emulatorClient: { sentMessages(phone: string): Promise<Array<Omit<PeerSent, 'from'>>> }, peers: string[]): Promise<PeerSent[]>;

export declare function collectInbox(daemonClient: { request(method: string, path: string): Promise<{ body: any }> }): Promise<InboxRowJson[]>;

/** One daemon of a cluster run: its events (account.state, account.close, with `at`) and when it was killed. */
export interface OwnershipDaemon {
  id: string;
  events: Array<Record<string, unknown> & { type: string; at: string; account?: string }>;
  killedAt: number[];
}
/** Accounts run by two daemons at overlapping times, and 440 closes seen before the run's final injected one. */
export declare function checkOwnership(daemons: OwnershipDaemon[], finalConflictAccount: string): { overlaps: string[]; conflicts: number };
