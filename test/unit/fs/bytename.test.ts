// Names that are not UTF-8 as strings (src/fs/bytename.ts): every byte string comes back as it
// was, text stays text, and the order is the bytes' order, as the helper's walk sorts.
import { compareNames, decodeName, displayName, encodeName, hasEscapedBytes, hostPath } from '../../../src/fs/bytename.js';

describe('bytename', () => {
  test('text is itself and costs nothing', () => {
    for (const s of ['plain', 'déjà', '日本', '\u{1f600}x', '\ufffd']) {
      expect(decodeName(Buffer.from(s))).toBe(s);
      expect(hasEscapedBytes(s)).toBe(false);
      expect(hostPath(s)).toBe(s);
    }
  });

  test('bytes that are not UTF-8 become lone surrogates, and back', () => {
    const bad = Buffer.from([0x62, 0xff, 0xfe, 0xc3, 0x61, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80, 0xe9]);
    const s = decodeName(bad);
    expect(s).toBe('b\udcff\udcfe\udcc3a\udced\udca0\udc80\u{1f600}\udce9');
    expect(hasEscapedBytes(s)).toBe(true);
    expect(encodeName(s)).toEqual(bad);
    expect(hostPath(s)).toEqual(bad);
    expect(displayName(s)).toBe('b\\xff\\xfe\\xc3a\\xed\\xa0\\x80\u{1f600}\\xe9');
  });

  test('every short byte string round-trips, and compares in byte order', () => {
    const samples: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(1 + (i % 6));
      for (let k = 0; k < b.length; k++) b[k] = (i * 7919 + k * 104729) % 256;
      samples.push(b);
    }
    for (const b of samples) expect(encodeName(decodeName(b))).toEqual(b);
    for (let i = 1; i < samples.length; i++) {
      const [a, b] = [samples[i - 1]!, samples[i]!];
      expect(Math.sign(compareNames(decodeName(a), decodeName(b)))).toBe(Math.sign(Buffer.compare(a, b)));
    }
  });
});
