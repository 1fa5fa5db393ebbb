// A pull-based reader over a stream of Buffers: exact-size reads for header blocks, zero-copy
// chunks for file content. Backpressure is natural: nothing is pulled from the source until the
// consumer asks, so a slow disk write slows the network read instead of filling memory.

const EMPTY = Buffer.alloc(0);

export class TruncatedError extends Error {}

export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = EMPTY;
  private done = false;
  /** Bytes handed out so far. */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.buf.length === 0 && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
    return this.buf.length > 0;
  }

  /** Up to `max` bytes that are already buffered or arrive in the next chunk; empty only at EOF. */
  async readSome(max: number): Promise<Buffer> {
    if (!(await this.fill())) return EMPTY;
    const out = this.buf.subarray(0, max);
    this.buf = this.buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }

  /** Exactly `n` bytes, or fewer only when the input ends first. */
  async read(n: number): Promise<Buffer> {
    const first = await this.readSome(n);
    if (first.length === n || first.length === 0) return first;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const more = await this.readSome(n - got);
      if (more.length === 0) break;
      parts.push(more);
      got += more.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Exactly `n` bytes or a TruncatedError naming `what`. */
  async readExact(n: number, what: string): Promise<Buffer> {
    const b = await this.read(n);
    if (b.length < n) throw new TruncatedError(`unexpected end of data in ${what}`);
    return b;
  }

  /** Closes the source early (on error), so a decompressor or socket behind it can stop. */
  async cancel(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}
