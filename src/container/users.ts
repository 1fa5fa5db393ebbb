// Users and groups named in a Dockerfile, looked up in the image being built: USER (for RUN)
// and COPY/ADD --chown. The files are the image's /etc/passwd and /etc/group, read through
// resolveInRoot so that a symlinked /etc stays inside the rootfs.
//
// USER follows BuildKit's executor/oci GetUser, which is runc's (moby/sys/user) GetExecUser:
//  - `uid:gid` with both numeric (or `root`) is taken as is, without reading any file;
//  - otherwise the user is looked up by name, or by uid when numeric; a numeric uid missing from
//    passwd (or a missing passwd) is fine and gets gid 0, a missing name is an error;
//  - an explicit group is looked up the same way in /etc/group; without one the primary gid is
//    passwd's, and the supplementary groups are the groups that list the user by name;
//  - the primary gid is also the first supplementary group (BuildKit's ensureAdditionalGids,
//    from containerd): `USER 1234:1234` runs with groups=1234, as `id` shows in Docker.
//
// --chown follows BuildKit's llb.WithUser and llbsolver's readUser:
//  - `N` alone means N:N, `name` alone means the user's passwd uid and gid;
//  - `root` is 0 without a lookup; an empty group (`user:`) is gid 0;
//  - BuildKit silently falls back to 0 when a *name* is not found. tsbuild refuses instead, with
//    runc's wording, as for USER: a typo in --chown should not hand files to root unnoticed.
import { open } from 'node:fs/promises';
import { InvalidInputError } from '../errors.js';
import { resolveInRoot } from '../fs/securejoin.js';

/** The process identity for RUN. `groups` starts with the primary gid. */
export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

/** Owner for COPY/ADD --chown. */
export interface ResolvedOwner {
  readonly uid: number;
  readonly gid: number;
}

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** moby/sys/user: ids above 2^31-1 are refused, for 32-bit systems. */
const MAX_ID = 2 ** 31 - 1;
/** moby/sys/user and BuildKit refuse passwd/group files larger than this. */
const MAX_USER_FILE_BYTES = 10 << 20;

/** Resolve a USER value (`name`, `uid`, `uid:gid`, `name:group`, `uid:group`, `name:gid`). */
export async function resolveUser(rootfs: string, spec: string): Promise<ResolvedUser> {
  // An empty USER is root; BuildKit looks "0" up only to find root's supplementary groups.
  const isDefault = spec === '';
  const userSpec = isDefault ? '0' : spec;

  const fast = parseUidGidFastPath(userSpec);
  if (fast) return { uid: fast.uid, gid: fast.gid, groups: [fast.gid] };

  let user: { uid: number; gid: number; sgids: number[] };
  try {
    user = await execUser(rootfs, userSpec);
  } catch (err) {
    if (isDefault) return { uid: 0, gid: 0, groups: [0] };
    throw err;
  }
  const groups = user.sgids.includes(user.gid) ? user.sgids : [user.gid, ...user.sgids];
  return { uid: user.uid, gid: user.gid, groups };
}

/** Resolve a --chown value (`user`, `user:group`, numeric or by name). */
export async function resolveChown(rootfs: string, spec: string): Promise<ResolvedOwner> {
  const colon = spec.indexOf(':');
  const userPart = colon === -1 ? spec : spec.slice(0, colon);
  const groupPart = colon === -1 ? undefined : spec.slice(colon + 1);

  let uid = 0;
  let gid = 0;
  const userId = parseChownId(userPart, spec);
  if (userId !== undefined) {
    uid = userId;
    gid = userId;
  } else if (userPart !== '') {
    const found = (await readPasswd(rootfs))?.find((u) => u.name === userPart);
    if (!found) throw noSuchUser(userPart);
    uid = found.uid;
    gid = found.gid;
  }
  if (groupPart !== undefined) {
    const groupId = parseChownId(groupPart, spec);
    if (groupId !== undefined) {
      gid = groupId;
    } else if (groupPart === '') {
      gid = 0;
    } else {
      const found = (await readGroup(rootfs))?.find((g) => g.name === groupPart);
      if (!found) throw noSuchGroup(groupPart);
      gid = found.gid;
    }
  }
  return { uid, gid };
}

/** BuildKit's ParseUIDGID: both parts numeric (or `root`); uint32 range, no lookup. */
function parseUidGidFastPath(spec: string): { uid: number; gid: number } | undefined {
  const colon = spec.indexOf(':');
  if (colon === -1) return undefined;
  const uid = parseFastId(spec.slice(0, colon));
  const gid = parseFastId(spec.slice(colon + 1));
  return uid !== undefined && gid !== undefined ? { uid, gid } : undefined;
}

function parseFastId(s: string): number | undefined {
  if (s === 'root') return 0;
  if (!/^\+?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffffffff ? n : undefined;
}

/** `root`, or a decimal id; undefined for a name. */
function parseChownId(s: string, spec: string): number | undefined {
  if (s === 'root') return 0;
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n < 0 || n > MAX_ID) throw new InvalidInputError(`invalid --chown=${spec}: uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/** runc's GetExecUser, without defaults other than root. */
async function execUser(rootfs: string, spec: string): Promise<{ uid: number; gid: number; sgids: number[] }> {
  const colon = spec.indexOf(':');
  const userArg = parseArg(colon === -1 ? spec : spec.slice(0, colon));
  const groupArg = parseArg(colon === -1 ? '' : spec.slice(colon + 1));

  const passwd = await readPasswd(rootfs);
  let uid = 0;
  let gid = 0;
  let matchedName: string | undefined;
  const found = passwd?.find((u) =>
    userArg === undefined ? u.uid === 0 : userArg.id !== undefined ? u.uid === userArg.id : u.name === userArg.name,
  );
  if (found) {
    matchedName = found.name;
    uid = found.uid;
    gid = found.gid;
  } else if (userArg !== undefined) {
    if (userArg.id === undefined) throw noSuchUser(userArg.name);
    uid = userArg.id;
  }

  let sgids: number[] = [];
  if (groupArg !== undefined || matchedName !== undefined) {
    const groups = (await readGroup(rootfs)) ?? [];
    if (groupArg !== undefined) {
      const g = groups.find((e) => (groupArg.id !== undefined ? e.gid === groupArg.id : e.name === groupArg.name));
      if (g) gid = g.gid;
      else if (groupArg.id !== undefined) gid = groupArg.id;
      else throw noSuchGroup(groupArg.name);
    } else {
      sgids = groups.filter((g) => g.members.includes(matchedName!)).map((g) => g.gid);
    }
  }
  return { uid, gid, sgids };
}

interface Arg {
  readonly name: string;
  /** Set when the argument is numeric: then it matches by id only. */
  readonly id?: number;
}

function parseArg(s: string): Arg | undefined {
  if (s === '') return undefined;
  if (!/^[+-]?\d+$/.test(s)) return { name: s };
  const id = Number(s);
  if (id < 0 || id > MAX_ID) throw new InvalidInputError(`uids and gids must be in range 0-${MAX_ID}`);
  return { name: s, id };
}

function noSuchUser(name: string): InvalidInputError {
  return new InvalidInputError(`unable to find user ${name}: no matching entries in passwd file`);
}

function noSuchGroup(name: string): InvalidInputError {
  return new InvalidInputError(`unable to find group ${name}: no matching entries in group file`);
}

/** /etc/passwd's entries, or undefined when the image has none. */
async function readPasswd(rootfs: string): Promise<PasswdEntry[] | undefined> {
  const text = await readUserFile(rootfs, '/etc/passwd');
  if (text === undefined) return undefined;
  // name:password:uid:gid:gecos:home:shell. Unlike /etc/group, runc does not skip '#' lines here.
  return lines(text, false).map((line) => {
    const f = line.split(':');
    return { name: f[0] ?? '', uid: atoi(f[2]), gid: atoi(f[3]) };
  });
}

/** /etc/group's entries, or undefined when the image has none. */
async function readGroup(rootfs: string): Promise<GroupEntry[] | undefined> {
  const text = await readUserFile(rootfs, '/etc/group');
  if (text === undefined) return undefined;
  // name:password:gid:member,member
  return lines(text, true).map((line) => {
    const f = line.split(':');
    return { name: f[0] ?? '', gid: atoi(f[2]), members: f[3] ? f[3].split(',') : [] };
  });
}

function lines(text: string, skipComments: boolean): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !(skipComments && l.startsWith('#')));
}

/** Go's strconv.Atoi with the error ignored, as runc parses these files: garbage is 0. */
function atoi(s: string | undefined): number {
  return s !== undefined && /^[+-]?\d+$/.test(s) ? Number(s) : 0;
}

/**
 * A user database file from the image, or undefined when it cannot be opened (missing, a
 * directory on the way): like runc, that counts as "no entries". A file that is not regular, or
 * absurdly large, is an error.
 */
async function readUserFile(rootfs: string, path: string): Promise<string | undefined> {
  const host = await resolveInRoot(rootfs, path);
  let fh;
  try {
    fh = await open(host, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new InvalidInputError(`${path} is not a regular file`);
    if (st.size > MAX_USER_FILE_BYTES) throw new InvalidInputError(`${path} exceeds ${MAX_USER_FILE_BYTES} bytes`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
