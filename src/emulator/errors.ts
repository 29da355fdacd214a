/** Errors the emulator's API raises on bad requests; the control API maps them to HTTP. */

/** A request the emulator cannot carry out, with an HTTP status, a code and the field at fault. */
export class EmulatorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'EmulatorError';
  }
}
