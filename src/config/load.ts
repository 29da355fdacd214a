// Finding, reading and validating the one config file. Nothing is merged: exactly one file is
// used, and when other candidate files exist the caller is told which ones were ignored.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import { CONFIG_ENV, currentPlatform, defaultConfigPath, defaultStateDir, expandHome, type PlatformEnv } from '../platform/paths.js';
import { settingsProblems } from './account-settings.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { ConfigFileSchema, type ConfigFile } from './schema.js';

/** Where a config candidate came from. */
export type ConfigSource = 'flag' | 'env' | 'default';

/** A place a config file may be, and whether a file is there. */
export interface ConfigCandidate {
  path: string;
  source: ConfigSource;
  exists: boolean;
}

/** The outcome of looking for the config file: the one to use, and the existing ones ignored. */
export interface ConfigLocation {
  chosen: ConfigCandidate | null;
  ignored: ConfigCandidate[];
  candidates: ConfigCandidate[];
}

/** The validated config with paths made absolute and defaults filled in. */
export type EffectiveConfig = ConfigFile & { stateDir: string };

/** A loaded config and where it came from. */
export interface LoadedConfig {
  file: string;
  source: ConfigSource;
  ignored: ConfigCandidate[];
  config: EffectiveConfig;
}

/** Describes a config source in words. */
export function describeConfigSource(source: ConfigSource): string {
  return source === 'flag' ? 'from --config' : source === 'env' ? `from ${CONFIG_ENV}` : 'platform default';
}

/** Lists the candidates in precedence order (--config, WA_SUPERVISOR_CONFIG, platform default). */
export function locateConfig(flag: string | undefined, p: PlatformEnv = currentPlatform()): ConfigLocation {
  const raw: Array<{ path: string; source: ConfigSource }> = [];
  if (flag) raw.push({ path: flag, source: 'flag' });
  const env = p.env[CONFIG_ENV];
  if (env) raw.push({ path: env, source: 'env' });
  raw.push({ path: defaultConfigPath(p), source: 'default' });

  const candidates: ConfigCandidate[] = [];
  for (const c of raw) {
    const path = resolve(expandHome(c.path, p.home));
    if (candidates.some((x) => x.path === path)) continue; // the same file named twice is one file
    candidates.push({ path, source: c.source, exists: existsSync(path) });
  }
  // An explicit choice is used even when missing (so the error names it); the default only if present.
  const first = candidates[0]!;
  const chosen = first.source !== 'default' || first.exists ? first : null;
  const ignored = candidates.filter((c) => c !== chosen && c.exists);
  return { chosen, ignored, candidates };
}

/** A one-line notice naming the file used and the existing files ignored, or null when none were. */
export function ignoredNotice(loc: { chosen: ConfigCandidate | null; ignored: ConfigCandidate[] }): string | null {
  if (!loc.chosen || loc.ignored.length === 0) return null;
  const others = loc.ignored.map((c) => `${c.path} (${describeConfigSource(c.source)})`).join(', ');
  return `using config ${loc.chosen.path} (${describeConfigSource(loc.chosen.source)}); ignoring ${others}`;
}

/** Finds, reads and validates the config. Throws ConfigError naming the file and every bad key. */
export function loadConfig(flag: string | undefined, p: PlatformEnv = currentPlatform()): LoadedConfig {
  const loc = locateConfig(flag, p);
  if (!loc.chosen) {
    const tried = loc.candidates.map((c) => `${c.path} (${describeConfigSource(c.source)})`).join(', ');
    throw new ConfigError(null, [
      {
        path: '',
        message: `no config file found (looked for ${tried}); pass --config FILE or set ${CONFIG_ENV}`,
      },
    ]);
  }
  const { path, source } = loc.chosen;
  if (!loc.chosen.exists) {
    throw new ConfigError(path, [{ path: '', message: `file not found (${describeConfigSource(source)})` }]);
  }
  const config = parseConfigText(readConfigText(path), path, p);
  return { file: path, source, ignored: loc.ignored, config };
}

function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError(path, [{ path: '', message: `cannot read: ${why}` }]);
  }
}

/** Parses and validates config text; relative paths are taken relative to the file's directory. */
export function parseConfigText(text: string, file: string, p: PlatformEnv = currentPlatform()): EffectiveConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `not valid JSON: ${describeJsonError(text, err as Error)}` }]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', message: `expected a JSON object at the top level, got ${describeValue(raw)}` }]);
  }
  const parsed = ConfigFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(file, problemsFrom(parsed.error.issues, raw));
  const crossField = settingsProblems(parsed.data);
  if (crossField.length > 0) throw new ConfigError(file, crossField);

  const base = dirname(file);
  const abs = (v: string) => {
    const expanded = expandHome(v, p.home);
    return isAbsolute(expanded) ? expanded : resolve(base, expanded);
  };
  const cfg = parsed.data;
  return {
    ...cfg,
    stateDir: cfg.stateDir ? abs(cfg.stateDir) : defaultStateDir(p),
    ...(cfg.socket ? { socket: abs(cfg.socket) } : {}),
    ...(cfg.clientSocket ? { clientSocket: abs(cfg.clientSocket) } : {}),
  };
}

/** Turns zod issues into messages that name the key path, the expectation and what was found. */
function problemsFrom(issues: readonly z.core.$ZodIssue[], raw: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = formatPath(issue.path);
    // A secret's value never appears in a message, even when it is the wrong one.
    const last = issue.path[issue.path.length - 1];
    const value = typeof last === 'string' && SECRET_KEY_PATTERN.test(last) ? undefined : valueAt(raw, issue.path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const known = knownKeysAt(issue.path);
          const close = closestKey(key, known);
          const hint = close ? ` (did you mean "${close}"?)` : known.length ? ` (known keys here: ${known.join(', ')})` : '';
          out.push({ path: joinPath(path, key), message: `unknown key${hint}` });
        }
        break;
      case 'invalid_type':
        out.push({
          path,
          message: value === undefined ? `required (expected ${issue.expected})` : `expected ${issue.expected}, got ${describeValue(value)}`,
        });
        break;
      case 'invalid_value':
        out.push({
          path,
          message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(value)}`,
        });
        break;
      default: {
        const discriminator = /^Invalid discriminator value\. Expected (.*)$/.exec(issue.message);
        if (discriminator) {
          out.push({ path, message: `unknown value ${describeValue(value)}; expected one of ${discriminator[1]!.replace(/'/g, '"').split(' | ').join(', ')}` });
          break;
        }
        const msg = issue.message.replace(/^Invalid input: /, '');
        const quiet = issue.code === 'custom' && (issue.params as { omitValue?: boolean } | undefined)?.omitValue;
        out.push({ path, message: value === undefined || quiet ? msg : `${msg}, got ${describeValue(value)}` });
      }
    }
  }
  return out;
}

function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: unknown = ConfigFileSchema;
  for (const seg of path) {
    schema = unwrap(schema);
    const s = schema as { shape?: Record<string, unknown>; element?: unknown };
    if (typeof seg === 'number') schema = s.element;
    else schema = s.shape?.[String(seg)];
    if (!schema) return [];
  }
  const shape = (unwrap(schema) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).filter((k) => k !== '$schema') : [];
}

/** The known key within edit distance 2 of a misspelt one, if exactly one is that close. */
function closestKey(key: string, known: string[]): string | undefined {
  const near = known.filter((k) => editDistance(key.toLowerCase(), k.toLowerCase()) <= 2);
  return near.length === 1 ? near[0] : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { _zod?: { def: { type: string; innerType?: unknown; in?: unknown } } };
  while (s?._zod && ['default', 'optional', 'nullable', 'pipe', 'prefault'].includes(s._zod.def.type)) {
    const next = s._zod.def.innerType ?? s._zod.def.in;
    if (!next) break;
    s = next as typeof s;
  }
  return s;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) out = typeof seg === 'number' ? `${out}[${seg}]` : joinPath(out, String(seg));
  return out;
}

function joinPath(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg as string];
  }
  return v;
}

/** A short rendering of a value for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return `${typeof v} ${String(v)}`;
}

function describeJsonError(text: string, err: Error): string {
  const m = /position (\d+)/.exec(err.message);
  const reason = err.message.replace(/ in JSON at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/, '');
  if (!m) return reason;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `${reason} at line ${line} column ${col}`;
}

/** Key names whose values never appear in output or logs. */
export const SECRET_KEY_PATTERN = /secret|token|password|passphrase|apikey|api_key|authorization/i;

/** A URL with the password in its user part replaced by "[redacted]" (postgres://user:[redacted]@host/db). */
export function redactUrlPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:[redacted]@');
}

/** A deep copy with every value under a secret-looking key replaced by "[redacted]". */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY_PATTERN.test(k) ? '[redacted]' : k === 'url' && typeof v === 'string' ? redactUrlPassword(v) : redactSecrets(v);
    return out as T;
  }
  return value;
}
