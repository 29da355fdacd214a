// Request bodies: the one place where the control API reads and parses JSON. Every limit on a
// body lives here, so no route can be reached with input the others refuse.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

/** Largest request body accepted, in bytes. Messages and configs are far smaller. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Deepest nesting of arrays and objects accepted. A config nests about six levels; the limit is
 * there because code that walks a value recursively (JSON.stringify, zod) overflows the stack
 * on a body of a few hundred kilobytes of brackets, which would be a 500 instead of a 400.
 */
export const MAX_JSON_DEPTH = 64;

/** Reads the body whole and parses it; undefined when empty. Refuses oversized, malformed and too deep bodies. */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume(); // drain so the connection can carry the error reply
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => reject(err));
    req.on('end', () => {
      if (failed) return;
      try {
        resolve(parseJsonBody(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** Parses a body's text; throws HttpError 400 `bad_json` or `too_deep`. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  // Checked before parsing: the text is at most MAX_BODY_BYTES, so the scan is cheap, and the
  // parsed value is never built.
  const depth = nestingDepth(text, MAX_JSON_DEPTH);
  if (depth > MAX_JSON_DEPTH) {
    throw new HttpError(400, 'too_deep', `request body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'bad_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * The deepest `[`/`{` nesting in the text outside strings, counting stops once past `stopAbove`.
 * Does not validate: malformed text gets a depth here and its error from JSON.parse.
 */
export function nestingDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function tooLarge(): HttpError {
  return new HttpError(413, 'body_too_large', `request body is larger than ${MAX_BODY_BYTES} bytes`, { connection: 'close' });
}
