// `import { Client } from 'wa-supervisor/client'`: the typed client and what it returns and throws.
export { Client, type ClientOptions, type EventFilter, type InboxQuery, type WaitTarget } from './client.js';
export * from './errors.js';
export type * from './types.js';
