// Tests are TypeScript run as native ES modules (execa and ora are ESM-only), hence
// ts-jest's ESM mode and `node --experimental-vm-modules` in the npm test script.
// Type errors are caught by `npm run typecheck`, so ts-jest only transpiles.
//
// Two projects: `unit` (test/unit) runs in-process as any user, needing neither root nor the
// compiled dist/ (`npm run test:unit`); `system` is everything else: real mounts, namespaces,
// the compiled CLI and the peers, as root.
const common = {
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/helpers/setup.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
};

export default {
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    { ...common, displayName: 'system', roots: ['<rootDir>/test'], testPathIgnorePatterns: ['<rootDir>/test/unit/'] },
  ],
  testTimeout: 120000,
  maxWorkers: 2,
};
