// Reading stored rows: PostgreSQL answers bigint columns as strings (pg does not turn them into
// numbers, which could lose precision); the times and cursors stored in them fit a JavaScript number.

/** A nullable bigint (or SQLite integer) column as a number, or null. */
export function numberOrNull(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}
