/**
 * Which S3 server the tests run against, and what it guarantees: its name, as far as its answers
 * tell (`fauxqs` when embedded; `ceph-rgw` recognized by its request ids; else `unknown`), and its
 * capabilities as `probeServer` measures them. The vitest global setup finds both once per run;
 * tests read them with `testServer()` (from `@s3exchange/testing/vitest`) and skip what the server
 * cannot do, naming the feature: `it.skipIf(!server.supports(feature))(\`… (needs ${feature})\`, …)`.
 *
 * @example
 * ```ts
 * import { describeServer, startLocalS3 } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const server = await describeServer(s3, await s3.createBucket())
 * console.log(server.name, server.capabilities.conditionalPut) // fauxqs none
 * ```
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { probeServer, type ServerCapabilities } from '@s3exchange/core'
import { deleteBucket, type LocalS3, randomBucketName } from './local-s3.js'

/** What the tests know of their server. */
export interface TestServerInfo {
  /** `fauxqs` (the embedded one), `ceph-rgw` (told by its request ids), or `unknown`. */
  name: 'fauxqs' | 'ceph-rgw' | 'unknown'
  /** As `probeServer` measured them. */
  capabilities: ServerCapabilities
  /** Whether these credentials may create (and delete) buckets of their own. */
  createsBuckets: boolean
}

const MiB = 1024 * 1024

/**
 * What `probeServer` measured on the servers tests know by name, with single PUTs tried up to
 * 16 MiB (as `describeServer` probes): fauxqs 2.4 ignores every condition on writes and takes single
 * PUTs of 11 MiB, not 12; Ceph RGW 16.2 honours If-Match only with the bare ETag (412 on a missing
 * key), ignores conditions on CompleteMultipartUpload and answers it an empty ETag, and takes at most
 * 1,000 keys per DeleteObjects.
 */
export const MEASURED_CAPABILITIES: Record<Exclude<TestServerInfo['name'], 'unknown'>, ServerCapabilities> = {
  fauxqs: {
    putIfNoneMatch: 'ignored',
    conditionalPut: 'none',
    putIfMatchMissing: 'written',
    completeIfNoneMatch: 'ignored',
    completeIfMatch: 'ignored',
    conditionalComplete: false,
    completeEtag: true,
    minPartSize: 5 * MiB,
    maxSinglePut: 11 * MiB,
    maxSinglePutRefused: 12 * MiB,
    rangedGet: true,
    rangePastEnd: 416,
    getIfMatch: true,
    listPaging: true,
    listMaxKeys: 1000,
    deleteObjects: true,
    deleteObjectsMaxKeys: null,
  },
  'ceph-rgw': {
    putIfNoneMatch: 'honoured',
    conditionalPut: 'bare',
    putIfMatchMissing: 412,
    completeIfNoneMatch: 'ignored',
    completeIfMatch: 'ignored',
    conditionalComplete: false,
    completeEtag: false,
    minPartSize: 5 * MiB,
    maxSinglePut: 16 * MiB,
    maxSinglePutRefused: null,
    rangedGet: true,
    rangePastEnd: 416,
    getIfMatch: true,
    listPaging: true,
    listMaxKeys: 1000,
    deleteObjects: true,
    deleteObjectsMaxKeys: 1000,
  },
}

/**
 * Server features tests may need, each with how to read it from what is known of the server. A
 * test that needs one skips where it is missing, with the feature's name in its title.
 */
export const SERVER_FEATURES = {
  /** If-Match (in some ETag form) and If-None-Match: * enforced on PutObject. */
  'conditional PutObject': ({ capabilities: c }: TestServerInfo) => c.conditionalPut !== 'none' && c.putIfNoneMatch === 'honoured',
  /** If-Match with the quoted ETag (RFC 7232, AWS) enforced on PutObject. */
  'quoted If-Match on PutObject': ({ capabilities: c }: TestServerInfo) => c.conditionalPut === 'quoted' || c.conditionalPut === 'both',
  /** If-Match and If-None-Match honoured on CompleteMultipartUpload. */
  'conditional CompleteMultipartUpload': ({ capabilities: c }: TestServerInfo) => c.conditionalComplete,
  /** CompleteMultipartUpload answers the new object's ETag. */
  'an ETag in the CompleteMultipartUpload answer': ({ capabilities: c }: TestServerInfo) => c.completeEtag,
  /** Conditions on PutObject and CompleteMultipartUpload are all ignored (what a test of last-writer-wins behaviour needs). */
  'conditional writes ignored': ({ capabilities: c }: TestServerInfo) =>
    c.conditionalPut === 'none' && c.putIfNoneMatch === 'ignored' && c.completeIfMatch === 'ignored' && c.completeIfNoneMatch === 'ignored',
  /** The test credentials may create buckets (for tests that need a whole bucket of their own). */
  'creating buckets': (server: TestServerInfo) => server.createsBuckets,
} as const

/** The name of a feature in {@link SERVER_FEATURES}. */
export type ServerFeature = keyof typeof SERVER_FEATURES

/** Whether `server` has `feature`. */
export function serverSupports(server: TestServerInfo, feature: ServerFeature): boolean {
  return SERVER_FEATURES[feature](server)
}

/**
 * Names the server behind `s3`, probes it in `bucket` (under a scratch prefix it empties, with
 * single PUTs tried up to 16 MiB), and tries to create and delete a bucket.
 */
export async function describeServer(s3: LocalS3, bucket: string): Promise<TestServerInfo> {
  const probe = await probeServer({ client: s3.client, bucket }, { maxSinglePutBound: 16 * MiB })
  return {
    name: s3.external ? await nameOf(s3.endpoint) : 'fauxqs',
    capabilities: probe.capabilities,
    createsBuckets: await createsBuckets(s3),
  }
}

async function createsBuckets(s3: LocalS3): Promise<boolean> {
  const bucket = randomBucketName('s3x-can-create')
  try {
    await s3.client.send(new CreateBucketCommand({ Bucket: bucket }))
  } catch {
    return false
  }
  await deleteBucket(s3.client, bucket)
  return true
}

/**
 * Ceph RGW answers every request with an `x-amz-request-id` of the form
 * `tx<21 hex>-<10 hex>-<hex>-<zone group>`; nothing else here does.
 */
async function nameOf(endpoint: string): Promise<TestServerInfo['name']> {
  try {
    const response = await fetch(endpoint, { method: 'GET' })
    await response.body?.cancel()
    const id = response.headers.get('x-amz-request-id') ?? ''
    return /^tx[0-9a-f]{21}-[0-9a-f]{10}-[0-9a-f]+-/.test(id) ? 'ceph-rgw' : 'unknown'
  } catch {
    return 'unknown'
  }
}
