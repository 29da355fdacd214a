/**
 * Validation of control API request bodies and query strings. Every failure is an
 * EmulatorError with status 400 that names the offending field.
 */
import { EmulatorError } from './errors.js';
import { isPhoneNumber } from './world.js';

/** Throws the 400 for `field`. */
function bad(field: string, message: string): never {
  throw new EmulatorError(400, 'bad_request', `${field}: ${message}`, field);
}

/** The digits of a phone number given as a string (a leading '+' or a JID's user part is accepted). */
function phoneDigits(value: unknown, name: string): string {
  if (typeof value !== 'string') bad(name, 'required, a phone number string such as "15550001111"');
  const digits = value.replace(/^\+/, '').replace(/@s\.whatsapp\.net$/, '');
  if (!isPhoneNumber(digits)) bad(name, `"${value}" is not a phone number (5–20 digits, no leading 0)`);
  return digits;
}

/** A parsed JSON object whose fields are read with type checks. */
export class Fields {
  private readonly data: Record<string, unknown>;

  constructor(
    raw: unknown,
    private readonly prefix = '',
  ) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(prefix || 'body', 'must be a JSON object');
    this.data = raw as Record<string, unknown>;
  }

  private name(field: string): string {
    return this.prefix ? `${this.prefix}.${field}` : field;
  }

  /** True if the field is present (and not null). */
  has(field: string): boolean {
    return this.data[field] !== undefined && this.data[field] !== null;
  }

  /** A required non-empty string. */
  string(field: string, maxLength = 100_000): string {
    const value = this.data[field];
    if (typeof value !== 'string' || value.length === 0) bad(this.name(field), 'required, a non-empty string');
    if (value.length > maxLength) bad(this.name(field), `at most ${maxLength} characters`);
    return value;
  }

  /** An optional non-empty string. */
  optionalString(field: string, maxLength?: number): string | undefined {
    return this.has(field) ? this.string(field, maxLength) : undefined;
  }

  boolean(field: string): boolean {
    const value = this.data[field];
    if (typeof value !== 'boolean') bad(this.name(field), 'expected true or false');
    return value as boolean;
  }

  /** A required nested object, read with the same checks (errors name `field.sub`). */
  object(field: string): Fields {
    return new Fields(this.data[field], this.name(field));
  }

  /** Required standard base64 (padding optional), decoded; at least one byte. */
  base64(field: string, maxLength: number): Buffer {
    const value = this.string(field, maxLength);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.replace(/=+$/, '').length % 4 === 1) bad(this.name(field), 'must be base64');
    return Buffer.from(value, 'base64');
  }

  /** A required phone number (digits only). Accepts a leading '+' or a JID's user part. */
  phone(field: string): string {
    return phoneDigits(this.data[field], this.name(field));
  }

  /** A required, non-empty array of phone numbers (each read as `phone` reads one), at most `max`. */
  phones(field: string, max = 1024): string[] {
    const value = this.data[field];
    if (!Array.isArray(value) || value.length === 0) bad(this.name(field), 'required, a non-empty array of phone number strings');
    if (value.length > max) bad(this.name(field), `at most ${max} entries`);
    return value.map((entry: unknown, i) => phoneDigits(entry, `${this.name(field)}[${i}]`));
  }

  /** An optional integer within [min, max]. */
  optionalInt(field: string, min: number, max: number): number | undefined {
    if (!this.has(field)) return undefined;
    const value = this.data[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      bad(this.name(field), `must be an integer from ${min} to ${max}`);
    }
    return value;
  }

  /** A required integer within [min, max]. */
  int(field: string, min: number, max: number): number {
    const value = this.optionalInt(field, min, max);
    if (value === undefined) bad(this.name(field), `required, an integer from ${min} to ${max}`);
    return value;
  }

  /** A required string from a fixed set. */
  oneOf<T extends string>(field: string, allowed: readonly T[]): T {
    const value = this.data[field];
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      bad(this.name(field), `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
    return value as T;
  }
}

/** Query parameters that hold integers; the rest stay strings. */
const NUMERIC_QUERY_KEYS = new Set(['after', 'timeoutMs']);

/** Reads query parameters with the same checks (integers for NUMERIC_QUERY_KEYS). */
export function queryFields(params: URLSearchParams): Fields {
  const data: Record<string, unknown> = {};
  for (const [key, value] of params) {
    data[key] = NUMERIC_QUERY_KEYS.has(key) && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  return new Fields(data, '');
}
