import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run against the sources; `pnpm test` also builds dist/ for the examples it spawns.
    alias: [
      { find: /^@s3exchange\/testing\/vitest$/, replacement: src('testing/src/vitest.ts') },
      { find: /^@s3exchange\/testing$/, replacement: src('testing/src/index.ts') },
      { find: /^@s3exchange\/core\/internals$/, replacement: src('core/src/internals.ts') },
      { find: /^@s3exchange\/core$/, replacement: src('core/src/index.ts') },
      { find: /^s3exchange\/internals$/, replacement: src('store/src/internals.ts') },
      { find: /^s3exchange$/, replacement: src('store/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['packages/testing/src/vitest-global-setup.ts'],
    // A safety net against hangs only; no test asserts on time.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
})
