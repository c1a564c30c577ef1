/**
 * Helpers for vitest test files that run against the S3 server of the shared global setup:
 * `useTestS3()` connects and makes a bucket for the file; `testServer()` tells what the server is
 * and whether it supports a feature, so that a test that needs one skips, naming it, where it is
 * missing.
 *
 * @example
 * ```ts
 * import { useTestS3 } from '@s3exchange/testing/vitest'
 *
 * const s3 = useTestS3()            // one bucket per test file, created in beforeAll
 * it('writes', async () => {
 *   await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.key('a.txt'), Body: 'a' }))
 * })
 *
 * const server = testServer()
 * const feature = 'conditional CompleteMultipartUpload'
 * it.skipIf(!server.supports(feature))(`refuses a stale completion (needs ${feature})`, async () => { … })
 * ```
 */

import { randomBytes } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, expect, inject } from 'vitest'
import { connectS3, type LocalS3, type S3Connection } from './local-s3.js'
import type { RecordedRequest, S3Proxy, S3ProxyOptions } from './proxy-types.js'
import { startS3Proxy } from './s3-proxy.js'
import { type ServerFeature, serverSupports, type TestServerInfo } from './test-server.js'
import { expectedOptionHeaders, optionHeaders, requestKey, s3Operation, type WriteOptionsSent } from './write-options-support.js'

declare module 'vitest' {
  export interface ProvidedContext {
    s3: S3Connection
    s3Server: TestServerInfo
  }
}

/** The test server's name and capabilities, and whether it supports a feature. */
export interface TestServer extends TestServerInfo {
  supports(feature: ServerFeature): boolean
}

/** What the tests' S3 server is and guarantees (found once per run by the global setup); usable at collection time. */
export function testServer(): TestServer {
  const info = inject('s3Server')
  return { ...info, supports: (feature) => serverSupports(info, feature) }
}

/** What a test file gets from {@link useTestS3}; fields are set once `beforeAll` has run. */
export interface TestS3 {
  /** The shared server. */
  s3: LocalS3
  /** A client for it. */
  client: S3Client
  /** The bucket of this test file. */
  bucket: string
  /** A prefix unique to this test file (so files can share a bucket on an external server). */
  prefix: string
  /** `prefix/name`. */
  key(name: string): string
}

/** Connects to the shared S3 server and creates a bucket for this test file. */
export function useTestS3(): TestS3 {
  const state = {} as TestS3
  beforeAll(async () => {
    const s3 = connectS3(inject('s3'))
    state.s3 = s3
    state.client = s3.client
    state.bucket = await s3.createBucket()
    state.prefix = `t-${randomBytes(4).toString('hex')}`
    state.key = (name: string) => `${state.prefix}/${name}`
  })
  afterAll(async () => {
    await state.s3?.stop()
  })
  return state
}

/** Runs `work` and resolves to the requests `proxy` recorded meanwhile. */
export async function requestsDuring(proxy: S3Proxy, work: () => Promise<unknown>): Promise<RecordedRequest[]> {
  const from = proxy.requests.length
  await work()
  return proxy.requests.slice(from)
}

/**
 * Asserts that every request carries exactly the write-option headers a write with `options`
 * must put on it (see `expectedOptionHeaders`: all on PutObject and CreateMultipartUpload, the
 * SSE-C key alone on UploadPart, the completion, GET and HEAD, none elsewhere). Resolves to the
 * operations seen, by object key (`(bucket)` for requests on the bucket), in order.
 */
export function expectOptionsOnEveryRequest(requests: readonly RecordedRequest[], options: WriteOptionsSent): Map<string, string[]> {
  const seen = new Map<string, string[]>()
  for (const request of requests) {
    const operation = s3Operation(request)
    const key = requestKey(request) ?? '(bucket)'
    seen.set(key, [...(seen.get(key) ?? []), operation])
    expect(optionHeaders(request), `${operation} ${key}`).toStrictEqual(expectedOptionHeaders(request, options))
  }
  return seen
}

/** What a test file gets from {@link useS3Proxy}; fields are set once `beforeAll` has run. */
export interface TestS3Proxy {
  /** The proxy: `proxy.requests` logs every request made through it. */
  proxy: S3Proxy
  /** A client that goes through the proxy (destroyed in `afterAll`). */
  client: S3Client
}

/**
 * Starts a fault-injecting proxy in front of the test file's S3 server (see {@link useTestS3})
 * and a client through it, for tests that count or inspect requests. Call after `useTestS3()`.
 *
 * @example
 * ```ts
 * const s3 = useTestS3()
 * const via = useS3Proxy(s3)
 * it('reads one member with one ranged GET', async () => {
 *   const mark = via.proxy.requests.length
 *   await openArchiveMember({ client: via.client, bucket: s3.bucket }, key, 'a.txt')
 *   expect(via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')).toHaveLength(2)
 * })
 * ```
 */
export function useS3Proxy(s3: TestS3, options: Omit<S3ProxyOptions, 'target'> = {}): TestS3Proxy {
  const state = {} as TestS3Proxy
  beforeAll(async () => {
    state.proxy = await startS3Proxy({ ...options, target: s3.s3.endpoint })
    state.client = s3.s3.createClient({ endpoint: state.proxy.endpoint })
  })
  afterAll(async () => {
    state.client?.destroy()
    await state.proxy?.stop()
  })
  return state
}
