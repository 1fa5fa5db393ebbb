// CRC-64/ISO (reflected polynomial 0xD800000000000000), as Go's hash/crc64 computes it with
// crc64.MakeTable(crc64.ISO). tar-split stores this checksum for every file payload, so ours
// must be bit-for-bit the same for Docker's tar-split files and ours to verify each other.
//
// JavaScript has no fast 64-bit integers, so the register is kept as two uint32 halves and the
// table is slicing-by-8 (eight 256-entry tables), which processes eight input bytes per step.

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

/** An incremental CRC-64/ISO. `digest()` gives the 8 big-endian bytes Go's `Sum(nil)` returns. */
export class Crc64 {
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
      const a0 = a & 0xff, a1 = (a >>> 8) & 0xff, a2 = (a >>> 16) & 0xff, a3 = a >>> 24;
      const b0 = b & 0xff, b1 = (b >>> 8) & 0xff, b2 = (b >>> 16) & 0xff, b3 = b >>> 24;
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

export function crc64(data: Uint8Array): Buffer {
  return new Crc64().update(data).digest();
}
