// The images a reading command (analyze, diff, history, inspect) names, opened for the time it
// reads them (src/analyze/source.ts): the store only if a name is in it, every source closed
// afterwards (an archive's spool and a registry's downloads are removed), and Ctrl-C ending the
// read so that they are removed then too.
import { openSource, type SourceImage } from '../src/analyze/index.js';
import { Store } from '../src/store/store.js';
import { platformOption, storeOptions } from './common.js';
import { abortOnSignals } from './signals.js';

/** A read ended by Ctrl-C (or SIGTERM): the command exits with this code, the message printed already. */
export class Interrupted {
  constructor(readonly exitCode: number) {}
}

export async function withSources<T>(
  names: readonly string[],
  values: { root?: unknown; 'storage-driver'?: unknown; platform?: unknown },
  use: (images: readonly SourceImage[]) => Promise<T>,
): Promise<T | Interrupted> {
  let store: Promise<Store> | undefined;
  const signals = abortOnSignals();
  const platform = platformOption(values.platform);
  const opts = {
    store: async () => (store ??= Store.open(await storeOptions(values))),
    signal: signals.signal,
    ...(platform ? { platform } : {}),
  };
  const opened: SourceImage[] = [];
  try {
    for (const name of names) opened.push(await openSource(name, opts));
    return await use(opened);
  } catch (err) {
    const code = signals.exitCode();
    if (code === undefined) throw err;
    process.stderr.write('Error: interrupted\n');
    return new Interrupted(code);
  } finally {
    for (const s of opened) await s.close();
    signals.dispose();
  }
}
