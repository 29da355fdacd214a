// Tool results: the JSON a model reads (as text, and as structuredContent for hosts that use it),
// or an error whose one line says what happened.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** A successful result carrying `value`. */
export function jsonResult(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}

/** A tool error: `text` is all the model reads. */
export function errorResult(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}
