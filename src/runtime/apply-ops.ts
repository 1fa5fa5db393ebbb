// Applying FsOps (mknod, lsetxattr) in one batch through `tsbuild-helper apply-ops`.
import { InvalidInputError } from '../errors.js';
import { runHelper } from './binary.js';
import type { FsOp } from './types.js';

const NUL = Buffer.from([0]);

function field(value: string | number | Buffer, what: string, op: FsOp): Buffer {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
  if (bytes.includes(0)) throw new InvalidInputError(`${op.op} ${op.path.toString()}: ${what} contains a NUL byte`);
  return Buffer.concat([bytes, NUL]);
}

function integer(value: number, what: string, op: FsOp, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidInputError(`${op.op} ${op.path.toString()}: invalid ${what} ${value}`);
  }
  return value;
}

/**
 * The helper's wire format (see native/helper/apply_ops.c): NUL-terminated fields, fixed
 * arity per op, and the xattr value as LENGTH then raw bytes, so any value is safe.
 */
function encode(op: FsOp): Buffer[] {
  switch (op.op) {
    case 'mknod':
      return [
        field('mknod', 'op', op),
        field(op.path, 'path', op),
        field(op.type, 'type', op),
        // Permission bits only: the file type is `type`.
        field(integer(op.mode, 'mode', op, 0xffffffff) & 0o7777, 'mode', op),
        field(integer(op.major, 'major', op, 0xfff), 'major', op),
        field(integer(op.minor, 'minor', op, 0xfffff), 'minor', op),
        field(integer(op.uid, 'uid', op, 2 ** 32 - 2), 'uid', op),
        field(integer(op.gid, 'gid', op, 2 ** 32 - 2), 'gid', op),
      ];
    case 'copyxattr':
      return [field('copyxattr', 'op', op), field(op.from, 'from', op), field(op.path, 'path', op), field(op.name, 'name', op)];
    case 'setxattr':
      return [
        field('setxattr', 'op', op),
        field(op.path, 'path', op),
        field(op.name, 'name', op),
        field(op.value.length, 'length', op),
        op.value,
      ];
  }
}

/**
 * Apply OPS in order. Final path components are never followed (a symlink gets the xattr
 * itself, a mknod over anything existing fails). Stops at the first failure with a
 * HelperError naming the op, the path and the system error; earlier ops stay applied.
 */
export async function applyOps(ops: Iterable<FsOp>): Promise<void> {
  const chunks: Buffer[] = [];
  for (const op of ops) chunks.push(...encode(op));
  if (chunks.length === 0) return;
  await runHelper(['apply-ops'], { input: Buffer.concat(chunks) });
}
