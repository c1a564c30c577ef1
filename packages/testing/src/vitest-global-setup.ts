/**
 * Vitest global setup shared by every package's tests: one S3 server for the whole run
 * (embedded fauxqs, or the server named by `S3_ENDPOINT_URL`), handed to test files with
 * `inject('s3')`; see `useTestS3` in `@s3exchange/testing/vitest`.
 *
 * @example
 * ```ts
 * // vitest.config.ts
 * export default defineConfig({ test: { globalSetup: ['@s3exchange/testing/vitest-global-setup'] } })
 * ```
 */
import type { TestProject } from 'vitest/node'
import { type LocalS3, startLocalS3 } from './local-s3.js'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const s3: LocalS3 = await startLocalS3()
  const { endpoint, region, credentials, forcePathStyle, sharedBucket } = s3
  project.provide('s3', { endpoint, region, credentials, forcePathStyle, ...(sharedBucket ? { sharedBucket } : {}) })
  return () => s3.stop()
}
