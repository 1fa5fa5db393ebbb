// A layer whose blob is a file (downloaded from a registry or a cache): the image model's Layer
// view of it, compressed as the file holds it and uncompressed through decompress. The file is
// asked for only when a reader is opened, so a layer nothing reads is never downloaded.
import { createReadStream } from 'node:fs';
import { addAbortSignal, Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import type { Layer } from '../image/image.js';
import type { Descriptor } from '../image/manifest.js';
import { decompress } from './decompress.js';

/** `file` gives the blob's path once it is there, checked against `d.digest`; `signal` ends a read. */
export function blobLayer(d: Descriptor, diffId: Digest, file: () => Promise<string>, signal?: AbortSignal): Layer {
  const compressed = async (): Promise<Readable> => {
    const stream = createReadStream(await file());
    // Unpacking a big layer takes a while: an abort ends the read, and with it the unpacking.
    return signal ? addAbortSignal(signal, stream) : stream;
  };
  return {
    diffId,
    mediaType: d.mediaType,
    digest: async () => d.digest,
    size: async () => d.size,
    compressed,
    uncompressed: async () => Readable.from(decompress(await compressed())),
  };
}
