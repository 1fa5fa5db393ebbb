// CRC-64/ISO (reflected polynomial 0xD800000000000000), as Go's hash/crc64 computes it with
// crc64.MakeTable(crc64.ISO). tar-split stores this checksum for every file payload, so ours
// must be bit-for-bit the same for Docker's tar-split files and ours to verify each other.
//
// The work is done by a tiny WebAssembly function (built below, byte by byte: slicing-by-8
// over 64-bit table entries), about three times as fast as JavaScript, which has no fast 64-bit
// integers: every byte of a layer goes through here when it is committed, saved or pushed.
// The JavaScript version (the register as two uint32 halves, the same slicing-by-8) remains
// for when WebAssembly is not available, and is the reference the tables are built with.

const POLY_HI = 0xd8000000; // the ISO polynomial has no bits in its low half

type Tables = [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** tables[k][i]: the CRC of byte i followed by k zero bytes, split into high and low halves. */
const TABLES_HI: Uint32Array[] = [];
const TABLES_LO: Uint32Array[] = [];

function buildTables(): void {
  const hi0 = new Uint32Array(256);
  const lo0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let hi = 0;
    let lo = i;
    for (let j = 0; j < 8; j++) {
      const lsb = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (lsb) hi = (hi ^ POLY_HI) >>> 0;
    }
    hi0[i] = hi;
    lo0[i] = lo;
  }
  TABLES_HI.push(hi0);
  TABLES_LO.push(lo0);
  for (let k = 1; k < 8; k++) {
    const prevHi = TABLES_HI[k - 1]!;
    const prevLo = TABLES_LO[k - 1]!;
    const hi = new Uint32Array(256);
    const lo = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      // t[k][i] = t[0][t[k-1][i] & 0xff] ^ (t[k-1][i] >> 8)
      const ph = prevHi[i]!;
      const pl = prevLo[i]!;
      const idx = pl & 0xff;
      hi[i] = (hi0[idx]! ^ (ph >>> 8)) >>> 0;
      lo[i] = (lo0[idx]! ^ ((pl >>> 8) | ((ph & 0xff) << 24))) >>> 0;
    }
    TABLES_HI.push(hi);
    TABLES_LO.push(lo);
  }
}
buildTables();

/** unsigned LEB128 */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Table k (CRC of a byte followed by k zero bytes) at k * TABLE_BYTES; input at DATA. */
const TABLE_BYTES = 256 * 8;
const DATA = 8 * TABLE_BYTES;
/** Input copied into the module's memory at a time. */
const DATA_CAP = 1 << 20;

/**
 * The module: `update(ptr, len, state) -> state` over memory it exports. Its body, in the
 * text format: while len >= 8, x = state ^ load64(ptr), state = T7[x & 0xff] ^ T6[x >> 8 &
 * 0xff] ^ ... ^ T0[x >> 56]; then byte by byte, state = T0[(state ^ b) & 0xff] ^ (state >> 8).
 * Laid out by hand (Prettier leaves it): one group of instructions per line, with its comment.
 */
// prettier-ignore
function moduleBytes(): Uint8Array {
  const [P, N, CRC, X] = [0, 1, 2, 3];
  const I32_CONST = 0x41, I64_CONST = 0x42, GET = 0x20, SET = 0x21;
  const tableIndex = [0xa7, I32_CONST, 0xff, 0x01, 0x71, I32_CONST, 3, 0x74]; // wrap, & 255, << 3
  const body: number[] = [
    0x02, 0x40, 0x03, 0x40, // block, loop
    GET, N, I32_CONST, 8, 0x49, 0x0d, 1, // br_if (len < 8) out of the block
    GET, CRC, GET, P, 0x29, 0, 0, 0x85, SET, X, // x = state ^ i64.load(ptr)
  ];
  for (let j = 0; j < 8; j++) {
    body.push(GET, X);
    if (j > 0) body.push(I64_CONST, 8 * j, 0x88); // >> 8j
    body.push(...tableIndex, 0x29, 3, ...uleb((7 - j) * TABLE_BYTES));
    if (j > 0) body.push(0x85);
  }
  body.push(
    SET, CRC,
    GET, P, I32_CONST, 8, 0x6a, SET, P,
    GET, N, I32_CONST, 8, 0x6b, SET, N,
    0x0c, 0, 0x0b, 0x0b, // br loop; end loop; end block
    0x02, 0x40, 0x03, 0x40,
    GET, N, 0x45, 0x0d, 1, // br_if (len == 0) out
    GET, CRC, GET, P, 0x31, 0, 0, 0x85, ...tableIndex, 0x29, 3, 0, // T0[(state ^ load8_u(ptr)) & 0xff]
    GET, CRC, I64_CONST, 8, 0x88, 0x85, SET, CRC, // ^ state >> 8
    GET, P, I32_CONST, 1, 0x6a, SET, P,
    GET, N, I32_CONST, 1, 0x6b, SET, N,
    0x0c, 0, 0x0b, 0x0b,
    GET, CRC, 0x0b,
  );
  const fn = [1, 1, 0x7e, ...body]; // one local of type i64 (x)
  const pages = Math.ceil((DATA + DATA_CAP) / 65536);
  const name = (s: string): number[] => [s.length, ...Buffer.from(s)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7e, 1, 0x7e]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, ...uleb(pages)]),
    ...section(7, [2, ...name('memory'), 0x02, 0, ...name('update'), 0x00, 0]),
    ...section(10, [1, ...uleb(fn.length), ...fn]),
  ]);
}

interface Native {
  readonly module: WebAssembly.Module;
  readonly memory: Uint8Array;
  readonly update: (ptr: number, len: number, state: bigint) => bigint;
}

/** The compiled module with the tables in its memory, or undefined without WebAssembly. */
function compile(): Native | undefined {
  try {
    const module = new WebAssembly.Module(moduleBytes().buffer as ArrayBuffer);
    const instance = new WebAssembly.Instance(module);
    const memory = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
    const view = new DataView(memory.buffer);
    for (let k = 0; k < 8; k++) {
      for (let i = 0; i < 256; i++) {
        view.setUint32(k * TABLE_BYTES + i * 8, TABLES_LO[k]![i]!, true);
        view.setUint32(k * TABLE_BYTES + i * 8 + 4, TABLES_HI[k]![i]!, true);
      }
    }
    return { module, memory, update: instance.exports.update as Native['update'] };
  } catch {
    return undefined;
  }
}

/** Compiled on first use, not at import: most commands never checksum a layer. */
let native: Native | null | undefined;
function nativeOrUndefined(): Native | undefined {
  if (native === undefined) native = compile() ?? null;
  return native ?? undefined;
}

const MASK64 = (1n << 64n) - 1n;

/** An incremental CRC-64/ISO. `digest()` gives the 8 big-endian bytes Go's `Sum(nil)` returns. */
export interface Crc64Hash {
  update(data: Uint8Array): this;
  digest(): Buffer;
}

class WasmCrc64 implements Crc64Hash {
  /** The register, inverted between calls (as Go keeps it). */
  private state = MASK64;
  constructor(private readonly m: Native) {}

  update(data: Uint8Array): this {
    let state = this.state;
    for (let at = 0; at < data.length; at += DATA_CAP) {
      const piece = data.subarray(at, at + DATA_CAP);
      this.m.memory.set(piece, DATA);
      state = BigInt.asUintN(64, this.m.update(DATA, piece.length, state));
    }
    this.state = state;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeBigUInt64BE(~this.state & MASK64);
    return out;
  }
}

/** The JavaScript implementation (also the fallback). */
export class Crc64Js implements Crc64Hash {
  // The register is kept inverted between calls, as Go does inside update().
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    const [t0h, t1h, t2h, t3h, t4h, t5h, t6h, t7h] = TABLES_HI as Tables;
    const [t0l, t1l, t2l, t3l, t4l, t5l, t6l, t7l] = TABLES_LO as Tables;
    const n = data.length;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      // XOR eight input bytes into the (little-endian) register, then look each byte up in the
      // table for its distance from the end of the group.
      const a = (lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
      const b = (hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24))) >>> 0;
      const a0 = a & 0xff,
        a1 = (a >>> 8) & 0xff,
        a2 = (a >>> 16) & 0xff,
        a3 = a >>> 24;
      const b0 = b & 0xff,
        b1 = (b >>> 8) & 0xff,
        b2 = (b >>> 16) & 0xff,
        b3 = b >>> 24;
      hi = t7h[a0]! ^ t6h[a1]! ^ t5h[a2]! ^ t4h[a3]! ^ t3h[b0]! ^ t2h[b1]! ^ t1h[b2]! ^ t0h[b3]!;
      lo = t7l[a0]! ^ t6l[a1]! ^ t5l[a2]! ^ t4l[a3]! ^ t3l[b0]! ^ t2l[b1]! ^ t1l[b2]! ^ t0l[b3]!;
    }
    for (; i < n; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = (t0l[idx]! ^ ((lo >>> 8) | ((hi & 0xff) << 24))) >>> 0;
      hi = (t0h[idx]! ^ (hi >>> 8)) >>> 0;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE(~this.hi >>> 0, 0);
    out.writeUInt32BE(~this.lo >>> 0, 4);
    return out;
  }
}

/** An incremental CRC-64/ISO, as fast as this platform allows. */
export class Crc64 implements Crc64Hash {
  private readonly impl: Crc64Hash;
  constructor() {
    const m = nativeOrUndefined();
    this.impl = m ? new WasmCrc64(m) : new Crc64Js();
  }
  update(data: Uint8Array): this {
    this.impl.update(data);
    return this;
  }
  digest(): Buffer {
    return this.impl.digest();
  }
}

export function crc64(data: Uint8Array): Buffer {
  return new Crc64().update(data).digest();
}

/**
 * What another thread needs to run the same code (crc64-file.ts): the compiled module, which
 * worker threads share, the tables to put at the start of its memory, and where input goes.
 * Undefined without WebAssembly.
 */
export function crc64Module(): { module: WebAssembly.Module; tables: Uint8Array; dataOffset: number; dataCap: number } | undefined {
  const m = nativeOrUndefined();
  if (m === undefined) return undefined;
  return { module: m.module, tables: m.memory.slice(0, DATA), dataOffset: DATA, dataCap: DATA_CAP };
}
