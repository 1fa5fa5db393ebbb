// Tar order for layer entries: depth first, a directory before its contents, siblings sorted by
// the bytes of their names. The helper's walk emits exactly this order; merging two walks needs
// the same comparison.

/** Negative if a comes before b. Paths are '/'-separated and relative. */
export function compareTarOrder(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
  }
  return pa.length - pb.length;
}
