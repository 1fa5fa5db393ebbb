// Tests are TypeScript run as native ES modules (execa and ora are ESM-only), hence
// ts-jest's ESM mode and `node --experimental-vm-modules` in the npm test script.
// Type errors are caught by `npm run typecheck`, so ts-jest only transpiles.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/helpers/setup.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testTimeout: 120000,
  maxWorkers: 2,
};
