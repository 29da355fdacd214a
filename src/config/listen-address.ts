// A TCP listen address as the config spells it.

/** `metrics.listen` as host and port: "9464" or ":9464" is 127.0.0.1:9464; "[::1]:9464" and "0.0.0.0:9464" as written; port 0 takes a free one (logged). */
export function parseListen(listen: string | number): { host: string; port: number } | null {
  const text = String(listen).trim();
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)?:)?(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}
