import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites start real daemons and bcrypt is CPU-bound: on two cores, one
    // file at a time is faster and steadier than several.
    fileParallelism: false,
    reporters: ['default'],
  },
});
