// Byte counts for people, docker's way. The CLI's tables and the analyze HTML report share it;
// the report's page script carries it as source text (Function.prototype.toString), so the
// function is self-contained: no module-level names, no imports.

/**
 * docker's units.HumanSizeWithPrecision: decimal units, 3 significant digits by default
 * (`1.23MB`, `4.1kB`, `0B`); units.HumanSize's 4 for `docker images`' VirtualSize.
 */
export function humanSize(bytes: number, precision = 3): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(precision))}${units[i]}`;
}
