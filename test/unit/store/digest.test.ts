import { chainId, chainIds, parseDigest, sha256 } from '../../../src/digest.js';

// Three diffIDs and the chainIDs of their stacks, computed outside tsbuild: e.g.
//   printf 'sha256:867d…60c7 sha256:b596…fb00a' | sha256sum   →   edbab184…8517
const d1 = parseDigest('sha256:867d0767a47c392f80acb51572851923d6d3e55289828b0cd84a96ba342660c7');
const d2 = parseDigest('sha256:b5965a019fc65d7950827a769b7a9e49b53fcef2f55ed54595a5f8b409afb00a');
const d3 = parseDigest('sha256:a64b4c94a654b7617e8fdf0c56702e1347765f8e8f22abfcf0cb1e8edcb961f5');

describe('chainID', () => {
  test('the bottom layer’s chainID is its diffID', () => {
    expect(chainId([d1])).toBe(d1);
  });

  test('known vectors: two and three layers', () => {
    expect(chainId([d1, d2])).toBe('sha256:edbab184adac1d80d52d20ad99196a61f9406640ccf96e1995285d3a72928517');
    expect(chainId([d1, d2, d3])).toBe('sha256:1cf2d211cdb7a36dc7366f91b596c7d1f68940a529c5705aefa175e87c7b3aef');
  });

  test('is sha256 of "<parent chainID> <diffID>" with no newline', () => {
    const ids = chainIds([d1, d2]);
    expect(ids[1]).toBe(sha256(`${d1} ${d2}`));
    expect(ids[1]).not.toBe(sha256(`${d1} ${d2}\n`));
  });

  test('no layers, no chain', () => {
    expect(chainId([])).toBeUndefined();
  });
});

describe('digests', () => {
  test('only sha256:<64 hex> parses', () => {
    expect(() => parseDigest('sha256:abc')).toThrow(/invalid digest/);
    expect(() => parseDigest(`md5:${'0'.repeat(64)}`)).toThrow(/invalid digest/);
    expect(parseDigest(`sha256:${'a'.repeat(64)}`)).toBe(`sha256:${'a'.repeat(64)}`);
  });
});
