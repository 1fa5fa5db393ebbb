// tar-split + unpacked files -> the original layer tar, byte for byte (tar-split's
// NewOutputTarStream). Used by save and push: the store keeps only the unpacked diff dir.
import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { TsbuildError } from '../errors.js';
import { Crc64 } from './crc64.js';
import { readTarSplit } from './tarsplit.js';

const READ_CHUNK = 1 << 20;

/** A stored layer no longer matches its tar-split: a file changed size or content, or is missing. */
export class CorruptLayerError extends TsbuildError {}

/** The tar of a stored layer as a byte stream. Fails (with CorruptLayerError) as soon as a file does not match. */
export function regenerateLayer(tarSplitPath: string, fileRoot: string): Readable {
  return Readable.from(regenerateChunks(tarSplitPath, fileRoot), { objectMode: false });
}

/** The same, as an async generator of chunks. */
export async function* regenerateChunks(tarSplitPath: string, fileRoot: string): AsyncGenerator<Buffer, void, undefined> {
  const root = await realpath(fileRoot);
  const safeDirs = new Set<string>([root]);

  // A tar-split names files as the archive did; the name must stay inside fileRoot even through
  // symlinks that the layer itself contains.
  const resolve = async (name: Buffer): Promise<Buffer> => {
    const clean = posix.normalize(name.toString('latin1')).replace(/^\/+/, '').replace(/\/+$/, '');
    const shown = JSON.stringify(name.toString());
    if (clean === '.' || clean === '..' || clean.startsWith('../')) {
      throw new CorruptLayerError(`${tarSplitPath}: file entry ${shown} is outside the layer`);
    }
    const slash = clean.lastIndexOf('/');
    const dir = slash < 0 ? root : `${root}/${clean.slice(0, slash)}`;
    if (!safeDirs.has(dir)) {
      let real: string;
      try {
        real = (await realpath(Buffer.from(dir, 'latin1'), { encoding: 'buffer' })).toString('latin1');
      } catch (e) {
        throw new CorruptLayerError(`layer file ${shown} is missing from ${fileRoot}`, { cause: e });
      }
      if (real !== dir) throw new CorruptLayerError(`layer file ${shown} in ${fileRoot} is below a symlink`);
      safeDirs.add(dir);
    }
    return Buffer.from(`${root}/${clean}`, 'latin1');
  };

  for await (const entry of readTarSplit(tarSplitPath)) {
    if (entry.type === 'segment') {
      yield entry.payload;
      continue;
    }
    if (entry.size === 0) continue;
    const shown = JSON.stringify(entry.name.toString());
    const path = await resolve(entry.name);
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      throw new CorruptLayerError(`layer file ${shown} cannot be read from ${fileRoot}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new CorruptLayerError(`layer file ${shown} in ${fileRoot} is no longer a regular file`);
      if (st.size !== entry.size) {
        throw new CorruptLayerError(`layer file ${shown} in ${fileRoot} has ${st.size} bytes, the layer recorded ${entry.size}`);
      }
      const crc = new Crc64();
      let pos = 0;
      while (pos < entry.size) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, entry.size - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new CorruptLayerError(`layer file ${shown} in ${fileRoot} shrank while being read`);
        const chunk = buf.subarray(0, bytesRead);
        crc.update(chunk);
        pos += bytesRead;
        yield chunk;
      }
      if (entry.crc !== undefined && !crc.digest().equals(entry.crc)) {
        throw new CorruptLayerError(`layer file ${shown} in ${fileRoot} has changed since the layer was recorded (crc64 mismatch)`);
      }
    } finally {
      await fh.close();
    }
  }
}
