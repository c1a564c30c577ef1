/**
 * Vitest global setup shared by every package's tests: one S3 server for the whole run
 * (embedded fauxqs, or the server named by `S3_ENDPOINT_URL`), handed to test files with
 * `inject('s3')`, and what it is and guarantees (its name and its probed capabilities), with
 * `inject('s3Server')`; see `useTestS3` and `testServer` in `@s3exchange/testing/vitest`.
 *
 * @example
 * ```ts
 * // vitest.config.ts
 * export default defineConfig({ test: { globalSetup: ['@s3exchange/testing/vitest-global-setup'] } })
 * ```
 */
import type { TestProject } from 'vitest/node'
import { type LocalS3, startLocalS3 } from './local-s3.js'
import { describeServer } from './test-server.js'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const s3: LocalS3 = await startLocalS3()
  const { endpoint, region, credentials, forcePathStyle, sharedBucket } = s3
  project.provide('s3', { endpoint, region, credentials, forcePathStyle, ...(sharedBucket ? { sharedBucket } : {}) })
  project.provide('s3Server', await describeServer(s3, await s3.createBucket()))
  return () => s3.stop()
}
