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
