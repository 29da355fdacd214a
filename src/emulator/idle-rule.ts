/**
 * The server's idle window: a connection that sends no application stanza for `ms` is closed.
 * Only decoded stanzas touch it; WebSocket ping/pong frames never reach this code, which is the
 * point (real WhatsApp closes idle sockets even if TCP/WS keepalives flow).
 */
export class IdleRule {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private windowMs: number,
    private readonly onIdle: (windowMs: number) => void,
  ) {
    this.arm();
  }

  /** Restarts the window (call on every application stanza from the client). */
  touch(): void {
    this.timer?.refresh();
  }

  /** Changes the window and restarts it; 0 disables the rule. */
  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
    this.arm();
  }

  /** Stops the rule for good. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    this.stop();
    if (this.windowMs > 0) this.timer = setTimeout(() => this.onIdle(this.windowMs), this.windowMs);
  }
}
