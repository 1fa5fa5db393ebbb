// File names are bytes; tsbuild's paths are JS strings. A context, an image or a layer may hold a
// name that is not UTF-8 (`bad\xffname`), which Docker copies byte for byte. Read as UTF-8 such
// a name turns into U+FFFD and can never be found again (`ENOENT ... lstat 'bad�name'`).
//
// So names travel as strings in Python's "surrogateescape" form: each byte that does not start a
// valid UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF, and back again at the edges:
// every fs call on such a path (hostPath), every tar header (encodeName), every byte-order
// comparison (compareNames). A valid UTF-8 name never decodes to a lone surrogate, so names that
// are text, nearly all of them, are plain strings and cost nothing here. The helper's walk
// (native/helper/walk.c) writes names in the same form, as `\udcXX` JSON escapes.
/// <reference lib="es2024.string" />
import { isUtf8 } from 'node:buffer';
import { readdirSync } from 'node:fs';

/** Lone low surrogates in U+DC80..U+DCFF (not the second half of a pair): escaped bytes. */
const ESCAPED = /(?<![\ud800-\udbff])[\udc80-\udcff]/;

/** The length of the strict UTF-8 sequence at b[i] (no overlongs, surrogates or > U+10FFFF), 0 if none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  let n: number;
  let cp: number;
  if (c >= 0xc2 && c <= 0xdf) [n, cp] = [1, c & 0x1f];
  else if (c >= 0xe0 && c <= 0xef) [n, cp] = [2, c & 0x0f];
  else if (c >= 0xf0 && c <= 0xf4) [n, cp] = [3, c & 0x07];
  else return 0;
  if (i + n >= b.length) return 0;
  for (let k = 1; k <= n; k++) {
    const cc = b[i + k]!;
    if ((cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((n === 2 && cp < 0x800) || (n === 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n + 1;
}

/** A name's bytes as a string: UTF-8 where it is, each other byte as U+DC00 + byte. */
export function decodeName(b: Buffer): string {
  // Fast path: Node's own check, then its decoder.
  if (Buffer.isBuffer(b) && isUtf8(b)) return b.toString('utf8');
  let out = '';
  let start = 0;
  for (let i = 0; i < b.length;) {
    const n = sequenceLength(b, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += b.subarray(start, i).toString('utf8') + String.fromCharCode(0xdc00 + b[i]!);
    start = ++i;
  }
  return out + b.subarray(start).toString('utf8');
}

/**
 * Whether `s` holds escaped bytes (and so needs encodeName before it meets the filesystem). An
 * escaped byte is a lone surrogate, which a well-formed string has none of: V8 answers that
 * without a scan for a string of Latin-1 characters (most names), and with a plain loop
 * otherwise, where the regular expression's lookbehind costs several times more (a 20,000-file
 * checksum's text: ~10 ms of regex on Node 24). Only a string that is not well formed is searched.
 */
export function hasEscapedBytes(s: string): boolean {
  return !s.isWellFormed() && ESCAPED.test(s);
}

/** The bytes a decodeName string stands for. */
export function encodeName(s: string): Buffer {
  if (!hasEscapedBytes(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc80 || c > 0xdcff) continue;
    const prev = i > 0 ? s.charCodeAt(i - 1) : 0;
    if (prev >= 0xd800 && prev <= 0xdbff) continue; // the second half of a pair: text
    parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.of(c - 0xdc00));
    start = i + 1;
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** What to hand node:fs for the path `s`: the string itself, or its bytes if it holds escaped ones. */
export function hostPath(s: string): string | Buffer {
  return hasEscapedBytes(s) ? encodeName(s) : s;
}

/** Byte order of two names (Go's and the helper's strcmp order), escaped bytes included. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(encodeName(a), encodeName(b));
}

/** A name as users read it in messages: escaped bytes shown as `\xff`. */
export function displayName(s: string): string {
  if (!hasEscapedBytes(s)) return s;
  return s.replace(/(?<![\ud800-\udbff])[\udc80-\udcff]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
}

/**
 * The names in a directory, as readdirSync gives them, but with names that are not UTF-8 kept
 * as decodeName strings. Strings are read first (the common case, and the fastest); only a
 * listing with U+FFFD in it, where the decoder may have replaced bytes, is read again as bytes.
 */
export function readdirNamesSync(dir: string): string[] {
  const names = readdirSync(hostPath(dir));
  if (!names.some((n) => n.includes('\ufffd'))) return names;
  return readdirSync(hostPath(dir), { encoding: 'buffer' }).map(decodeName);
}
