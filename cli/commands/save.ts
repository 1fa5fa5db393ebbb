import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TsbuildError } from '../../src/errors.js';
import { ARCHIVE_FORMATS, planSave, saveToFile, saveToStream, type ArchiveFormat } from '../../src/archive/save.js';
import { saveTargets } from '../../src/archive/select.js';
import { minArgs, parseCommand, platformOption, storeOptions, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { abortOnSignals } from '../signals.js';
import { transferMode, transferOutput } from '../transfer-progress.js';

const spec = {
  usage: 'save [OPTIONS] IMAGE [IMAGE...]',
  description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  options: {
    output: { type: 'string', short: 'o' },
    format: { type: 'string' },
    progress: { type: 'string' },
    platform: { type: 'string' },
  },
  optionHelp: [
    '  -o, --output FILE            Write to a file, instead of STDOUT',
    '      --format docker|oci      docker: a docker save archive (default); oci: an OCI image layout',
    '      --progress auto|plain|tty  Progress on stderr (default auto: a spinner on a terminal)',
    '      --platform OS/ARCH       Save only this platform of a multi-platform image (default: all its platforms)',
  ],
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  minArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const format = (v.format ?? 'docker') as ArchiveFormat;
  if (!ARCHIVE_FORMATS.includes(format)) throw usageError(`invalid --format ${JSON.stringify(v.format)}: use docker or oci`);
  const mode = transferMode(v.progress);
  const platform = platformOption(v.platform);
  const toStdout = v.output === undefined || v.output === '-';
  // As docker: an archive is binary, and a terminal is no place for it.
  if (toStdout && process.stdout.isTTY) throw new TsbuildError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  if (!toStdout) {
    const dir = dirname(v.output!);
    if (
      !(await stat(dir).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new TsbuildError(`invalid output path: directory ${JSON.stringify(dir)} does not exist`);
    }
  }

  const store = await Store.open(await storeOptions(v));
  // Everything that can fail on a bad name or a missing layer fails here, before the first byte.
  const plan = await planSave(await saveTargets(store, args.positionals, platform), format);
  const out = await transferOutput(mode);
  const signals = abortOnSignals();
  try {
    const opts = { progress: out.progress, signal: signals.signal };
    if (toStdout) await saveToStream(plan, process.stdout, opts);
    else await saveToFile(plan, v.output!, opts);
  } catch (err) {
    const code = signals.exitCode();
    if (code !== undefined) {
      process.stderr.write('Error: save interrupted\n');
      return code;
    }
    throw err;
  } finally {
    out.finish();
    signals.dispose();
  }
}
