// Byte counts for people, docker's way. The CLI's tables and the analyze HTML report share it;
// the report's page script carries it as source text (Function.prototype.toString), so the
// function is self-contained: no module-level names, no imports.

/** docker's units.HumanSize: decimal units, 3 significant digits (`1.23MB`, `4.1kB`, `0B`). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(3))}${units[i]}`;
}
