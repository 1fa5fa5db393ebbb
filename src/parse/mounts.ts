// RUN --mount's value: BuildKit's comma-separated `key=value` list (a CSV record, as Go's
// encoding/csv reads it), checked with the rules and wording of moby/buildkit
// frontend/dockerfile/instructions/commands_runmount.go (parseMount). Each value is expanded with
// the stage's variables before it is read, as BuildKit's expander does, so the same function
// serves twice: at parse time with the values that hold no variable (so that a bad type, key,
// size or mode is an error at its line before anything runs), and at build time with all of them.
import { csvRecord } from './csv.js';
import { ParseProblem } from './problem.js';
import { expandWord, referencedVariables } from './substitute.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

const TYPES: ReadonlySet<string> = new Set<MountType>(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const SHARING: ReadonlySet<string> = new Set<CacheSharing>(['shared', 'private', 'locked']);

/** One --mount, read. Values whose variables were not known yet (parse time) are absent. */
export interface MountOptions {
  readonly type: MountType;
  readonly target?: string;
  readonly source?: string;
  readonly from?: string;
  /** Bind, secret and ssh mounts are read-only unless `rw`; cache and tmpfs are writable unless `ro`. */
  readonly readonly: boolean;
  /** Cache, secret and ssh: which one. */
  readonly id?: string;
  readonly sharing?: CacheSharing;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** tmpfs `size`, in bytes. */
  readonly sizeBytes?: number;
  /** Secret and ssh: a missing one fails the build instead of leaving the mount out. */
  readonly required: boolean;
  /** Secret: the environment variable of the RUN that holds it. */
  readonly env?: string;
}

/**
 * What a value expands to: a string, or `undefined` when it cannot be known yet (it names a
 * variable and this is the parse-time check). The key then counts as given, unchecked.
 */
export type MountValueExpander = (value: string) => string | undefined;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * parseMount with only the values that hold no variable read (quotes and escapes removed): what
 * can be known of a mount before a stage's variables are, at parse time and before a build.
 */
export function parseMountAsWritten(spec: string, escapeChar: string): MountOptions {
  return parseMount(spec, (value) => {
    if (referencedVariables(value, escapeChar).length > 0) return undefined;
    try {
      return expandWord(value, new Map(), escapeChar);
    } catch (err) {
      throw new ParseProblem((err as Error).message, { cause: err });
    }
  });
}

export function parseMount(spec: string, expand: MountValueExpander): MountOptions {
  const m: Mutable<MountOptions> = { type: 'bind', readonly: true, required: false };
  /** Keys given with a value not known yet. */
  const deferred = new Set<string>();
  let roAuto = true;
  for (const field of csvRecord(
    spec,
    (problem) =>
      new ParseProblem(
        problem === 'a quote inside an unquoted field'
          ? `bare " in non-quoted-field: ${spec}`
          : `extraneous or missing " in quoted-field: ${spec}`,
      ),
  )) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro' || key === 'readwrite' || key === 'rw') {
        m.readonly = key === 'readonly' || key === 'ro';
        roAuto = false;
        continue;
      }
      if (key === 'required') {
        if (m.type !== 'secret' && m.type !== 'ssh') throw new ParseProblem(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = true;
        continue;
      }
    }
    const value = expand(eq < 0 ? '' : field.slice(eq + 1));
    if (value === undefined) {
      if (key === 'type') throw new ParseProblem(`mount type must not use variables: '${field}'`);
      deferred.add(key);
      if (['readonly', 'ro', 'readwrite', 'rw'].includes(key)) roAuto = false;
      continue;
    }
    switch (key) {
      case 'type': {
        const type = value.toLowerCase();
        if (!TYPES.has(type)) throw new ParseProblem(`unsupported mount type "${value}"`);
        m.type = type as MountType;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readonly = parseBool(key, value);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readonly = !parseBool(key, value);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new ParseProblem(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new ParseProblem(`unexpected key '${key}' for mount type '${m.type}'`);
        m.sizeBytes = ramInBytes(value);
        break;
      case 'id':
        m.id = value;
        break;
      case 'sharing':
        if (!SHARING.has(value.toLowerCase())) throw new ParseProblem(`unsupported sharing value "${value}"`);
        m.sharing = value.toLowerCase() as CacheSharing;
        break;
      case 'mode':
        m.mode = parseUint(key, value, 8, 0o7777);
        break;
      case 'uid':
      case 'gid':
        m[key] = parseUint(key, value, 10, 2 ** 32 - 1);
        break;
      case 'env':
        if (m.type !== 'secret') throw new ParseProblem(`unexpected key '${key}' for mount type '${m.type}'`);
        if (value === '') throw new ParseProblem(`secret env must not be empty`);
        m.env = value;
        break;
      default:
        throw new ParseProblem(`unexpected key '${key}' in '${field}'`);
    }
  }

  const given = (key: 'mode' | 'uid' | 'gid' | 'sharing' | 'from' | 'target' | 'source' | 'id' | 'env'): boolean =>
    m[key] !== undefined || deferred.has(key);
  if (m.type !== 'cache' && m.type !== 'secret' && m.type !== 'ssh') {
    for (const key of ['mode', 'uid', 'gid'] as const) {
      if (given(key)) throw new ParseProblem(`${key} not allowed for "${m.type}" type mounts`);
    }
  }
  if (roAuto) m.readonly = m.type !== 'cache' && m.type !== 'tmpfs';
  if (given('sharing') && m.type !== 'cache') throw new ParseProblem(`invalid cache sharing set for ${m.type} mount`);
  if (m.type === 'secret') {
    if (given('from')) throw new ParseProblem('secret mount should not have a from');
    if (!given('source') && !given('target') && !given('id') && !given('env')) throw new ParseProblem('one of source, target required');
    if (given('source') && given('id')) throw new ParseProblem("both source and id can't be set");
  }
  if (m.type === 'ssh' && given('from')) throw new ParseProblem('ssh mount should not have a from');
  if (m.type === 'tmpfs' && (given('from') || given('source'))) throw new ParseProblem('tmpfs mount should not have a from or source');
  return m;
}

/** Go's strconv.ParseBool. */
function parseBool(key: string, value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new ParseProblem(`invalid value for ${key}: ${value}`);
}

function parseUint(key: string, value: string, base: 8 | 10, max: number): number {
  const digits = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = digits.test(value) ? parseInt(value, base) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new ParseProblem(`invalid value for ${key}: ${value}`);
  return n;
}

const RAM_UNITS: Readonly<Record<string, number>> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** docker/go-units RAMInBytes: `64m`, `1.5GiB`, `512 kb`; binary multiples. */
export function ramInBytes(value: string): number {
  const match = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  const size = match ? parseFloat(match[1]!) * RAM_UNITS[(match[2] ?? '').toLowerCase()]! : NaN;
  if (!Number.isFinite(size)) throw new ParseProblem(`invalid size: '${value}'`);
  return Math.floor(size);
}
