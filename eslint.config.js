// Lint: typescript-eslint's recommended rules, at most 450 lines a file in src/ and cli/, and the
// import floors of src/ (docs/architecture.md draws them): a folder may import the folders on lower floors, never one on its own floor or
// above, so no folder ever imports a folder that imports it back. Formatting is Prettier's
// (eslint-config-prettier turns off the rules that would disagree with it).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The floors, bottom first. The ground files (src/*.ts but index.ts) import only each other;
 * index.ts, the library's API, stands above everything; cli/ may use any of it.
 */
export const FLOORS = [
  ['image', 'parse'], // pure models: image config, references, manifests, the build plan
  ['fs', 'runtime', 'http'], // the system: files, the native helper, the network
  ['layer', 'context', 'snapshot'], // layer tars, the build context, snapshot directories
  ['store'],
  ['archive', 'registry'], // image sources and sinks beside the store
  ['container', 'cache'], // a rootfs's life: prepare, mount, run, commit; the build cache in registries and directories
  ['builder'],
  ['analyze', 'bootstrap'],
  ['check'], // build --check: the linter reuses analyze's knowledge of package caches
];

const ALL = FLOORS.flat();

/** For each folder, the imports it may not make: its own floor's other folders, every floor above, and the API. */
function floorRules() {
  return FLOORS.flatMap((floor, level) =>
    floor.map((folder) => {
      const banned = [...floor.filter((f) => f !== folder), ...FLOORS.slice(level + 1).flat()];
      return {
        files: [`src/${folder}/**/*.ts`],
        rules: {
          '@typescript-eslint/no-restricted-imports': [
            'error',
            {
              patterns: [
                {
                  group: [...banned.map((f) => `**/${f}/**`), '**/src/index.js', '../index.js'],
                  message: `src/${folder} is on floor ${level + 1}: it may import only lower floors (eslint.config.js, docs/architecture.md).`,
                },
              ],
            },
          ],
        },
      };
    }),
  );
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/', 'testdata/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names are deliberately unused (a destructured field left out on purpose).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // A file that outgrows this does more than one thing: split it by what it does.
    files: ['src/**/*.ts', 'cli/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 450 }] },
  },
  {
    // The ground: src/*.ts files other than the API import no folder.
    files: ['src/*.ts'],
    ignores: ['src/index.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ALL.map((f) => `./${f}/**`), message: 'the ground files (src/*.ts) import only each other.' }] },
      ],
    },
  },
  ...floorRules(),
  prettier,
);
