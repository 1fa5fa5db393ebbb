import { isDigest, hex } from '../../src/digest.js';
import { TsbuildError } from '../../src/errors.js';
import { familiarString, parseReference, withDefaultTag } from '../../src/image/reference.js';
import { minArgs, openStore, parseCommand } from '../common.js';

const spec = {
  usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
  description: 'Remove one or more images',
  options: { force: { type: 'boolean', short: 'f' } },
  optionHelp: ['  -f, --force                  Force removal of the image (all its tags)'],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  minArgs(args.positionals, 1, spec.usage);
  const store = await openStore(args.values);
  let failed = 0;
  for (const name of args.positionals) {
    try {
      const id = await store.resolveImage(name);
      const refs = await store.tags.refsOf(id);
      const byId = isDigest(name) || hex(id).startsWith(name);
      // Like docker: removing by name drops that tag; the image goes when no tag is left.
      // Removing by ID an image with several tags needs --force.
      let untag = refs;
      if (!byId) {
        const ref = withDefaultTag(parseReference(name));
        untag = refs.filter((r) => r.ref === familiarString(ref));
      } else if (refs.length > 1 && !args.values.force) {
        throw new TsbuildError(`conflict: unable to delete ${hex(id).slice(0, 12)} (must be forced) - image is referenced in multiple repositories`);
      }
      for (const r of untag) {
        await store.tags.delete(parseReference(r.ref));
        process.stdout.write(`Untagged: ${r.ref}\n`);
      }
      // deleteImage checks again, under the store lock, that no tag came back meanwhile.
      if ((await store.tags.refsOf(id)).length === 0 && (await store.deleteImage(id))) {
        process.stdout.write(`Deleted: ${id}\n`);
      }
    } catch (err) {
      failed++;
      process.stderr.write(`Error: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
