// Layer tars: change sets in, diffIDs and tar-split files out; tars in, unpacked dirs out; and
// stored layers back into the exact tars they came from.
export type { Change, LayerDescriptor, LayerWriteOptions } from './types.js';
export { writeLayer, type LayerWriteTarget } from './write.js';
export { applyLayer, type ApplyLayerOptions } from './apply.js';
export { compare, apply, DifferError, type DiffOptions } from './differ.js';
export {
  regenerateLayer,
  regenerateChunks,
  regeneratePieces,
  regenerateVerified,
  CorruptLayerError,
  type RegenerateOptions,
} from './regenerate.js';
export { detectCompression, decompress, type Compression } from './decompress.js';
export { readTarSplit, type TarSplitEntry } from './tarsplit.js';
// Tar primitives, for the outer archives of save/load (docker save writes them the same way).
export { encodeHeader, blockPadding, END_OF_ARCHIVE, type TarHeader, type EntryType } from './tarheader.js';
export { readTar, type TarItem } from './tarreader.js';
export { ByteReader } from './bytereader.js';
