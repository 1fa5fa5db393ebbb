import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { TsbuildError } from '../../src/errors.js';
import { loadArchive } from '../../src/archive/load.js';
import { familiarString } from '../../src/image/reference.js';
import { storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { abortOnSignals } from '../signals.js';
import { transferMode, transferOutput } from '../transfer-progress.js';
import { oneLine } from '../terminal.js';

const spec = {
  usage: 'load [OPTIONS]',
  description: 'Load images from a tar archive (docker save or OCI layout, optionally compressed) or STDIN',
  options: {
    input: { type: 'string', short: 'i' },
    quiet: { type: 'boolean', short: 'q' },
    progress: { type: 'string' },
  },
  optionHelp: [
    '  -i, --input FILE             Read from tar archive file, instead of STDIN',
    '  -q, --quiet                  Suppress the load progress',
    '      --progress auto|plain|tty  Progress on stderr (default auto: a spinner on a terminal)',
  ],
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  if (args.positionals.length > 0) throw usageError(`"tsbuild load" accepts no arguments. Usage: tsbuild ${spec.usage}`);
  const v = args.values;
  const mode = transferMode(v.progress, v.quiet);
  const file = v.input;
  if (file === undefined && process.stdin.isTTY) {
    // As docker: waiting on a terminal for a binary archive would only look like a hang.
    throw new TsbuildError('requested load from stdin, but stdin is empty');
  }
  if (file !== undefined)
    await access(file).catch(() => {
      throw usageError(`open ${file}: no such file or directory`);
    });

  const store = await Store.open(await storeOptions(v));
  const input = file === undefined ? process.stdin : createReadStream(file);
  const out = await transferOutput(mode);
  const signals = abortOnSignals();
  // An interrupt ends the input; the load then fails and removes what it had begun.
  signals.signal.addEventListener('abort', () => input.destroy(signals.signal.reason as Error), { once: true });
  try {
    await loadArchive(store, input, {
      progress: out.progress,
      signal: signals.signal,
      loaded: (img) => {
        out.finish();
        for (const t of img.tags) {
          const name = familiarString(t.ref);
          // Docker's wording, including its quirk of calling an untagged image "empty string".
          if (t.replaced)
            process.stdout.write(
              oneLine(`The image ${name} already exists, renaming the old one with ID ${t.replaced} to empty string`) + '\n',
            );
          process.stdout.write(`Loaded image: ${oneLine(name)}\n`);
        }
        if (img.tags.length === 0) process.stdout.write(`Loaded image ID: ${img.id}\n`);
      },
    });
  } catch (err) {
    const code = signals.exitCode();
    if (code !== undefined) {
      process.stderr.write('Error: load interrupted\n');
      return code;
    }
    throw err;
  } finally {
    out.finish();
    signals.dispose();
  }
}
