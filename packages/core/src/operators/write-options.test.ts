/**
 * Write options on the wire, through the recording proxy in front of the test server: every
 * request of every writer (putObject and putObjects, shardInto, writeManifestObject,
 * writeManifestParts with its root, compactInto), single PUTs and multipart uploads alike, carries
 * the options: all of them on PutObject and CreateMultipartUpload, the SSE-C key on every
 * UploadPart, completion, GET and HEAD. Then, where the server keeps an option
 * (`probeWriteOptions`), it is read back with the raw SDK: metadata, Cache-Control and
 * Content-Encoding (fauxqs and Ceph), tags, storage class and ACL (Ceph RGW), SSE-KMS and SSE-C
 * (a server that accepts them: Ceph RGW with a KMS backend and `rgw_crypt_require_ssl` off, AWS);
 * a test that needs more than the server keeps skips, naming the feature. SSE-KMS needs a key the
 * server knows: `S3X_TEST_KMS_KEY_ID` (default: none, the server's default key).
 */
import { randomBytes } from 'node:crypto'
import {
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import {
  probeWriteOptions,
  type RecordedRequest,
  requestKey,
  type S3Proxy,
  s3Operation,
  startS3Proxy,
  type WriteOptionSupport,
} from '@s3exchange/testing'
import { expectOptionsOnEveryRequest, requestsDuring, useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ShardItem } from '../archive/shard-items.js'
import type { ManifestEntry } from '../format/entries.js'
import { appendToManifest } from '../manifest/commit.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { headObject } from '../s3/requests.js'
import { type WriteOptions, withWriteOptions } from '../s3/write-options.js'
import { compactInto } from './compact.js'
import { putObject, putObjects } from './put-objects.js'
import { readManifest } from './read-manifest.js'
import { shardInto } from './shard-into.js'
import { writeManifestObject } from './write-manifest-object.js'
import { writeManifestParts } from './write-manifest-parts.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const KMS_KEY_ID = process.env.S3X_TEST_KMS_KEY_ID || undefined
const SSE_C_KEY = randomBytes(32)
let support: WriteOptionSupport
let proxy: S3Proxy
let client: S3Client
/** A context whose requests go through the proxy. */
let viaProxy: S3Context

/** Whether the server accepts If-Match with the quoted ETag on PutObject (a root append needs it; issue 11 adapts). */
let quotedIfMatch: boolean

beforeAll(async () => {
  support = await probeWriteOptions(s3.client, s3.bucket, s3.prefix, { kmsKeyId: KMS_KEY_ID })
  const probe = s3.key('if-match-probe')
  const { ETag } = await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: probe, Body: 'a' }))
  quotedIfMatch = await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: probe, Body: 'b', IfMatch: ETag })).then(
    () => true,
    () => false,
  )
  proxy = await startS3Proxy({ target: s3.s3.endpoint })
  client = s3.s3.createClient({ endpoint: proxy.endpoint })
  viaProxy = { client, bucket: s3.bucket }
})
afterAll(async () => {
  client?.destroy()
  await proxy?.stop()
})

/** The options of each kind of encryption, with every other option, as the server accepts them. */
function optionSet(kind: 'none' | 'kms' | 'sse-c'): WriteOptions {
  const rest: WriteOptions = {
    storageClass: support.acceptedStorageClass,
    metadata: { team: 'asr', 'Sample-Rate': '16000' },
    tagging: { team: 'asr', note: 'two words/ok' },
    cacheControl: 'max-age=60, public',
    contentEncoding: 'identity',
    acl: 'bucket-owner-full-control',
  }
  if (kind === 'kms')
    return { ...rest, serverSideEncryption: 'aws:kms', sseKmsKeyId: KMS_KEY_ID ?? 'alias/s3x-test', bucketKeyEnabled: true }
  if (kind === 'sse-c') return { ...rest, sseCustomerKey: { key: SSE_C_KEY } }
  return rest
}

/** Runs `write` and returns the requests the proxy saw meanwhile. */
function requestsOf(write: () => Promise<unknown>): Promise<RecordedRequest[]> {
  return requestsDuring(proxy, write)
}

function needs(kind: 'none' | 'kms' | 'sse-c'): string | undefined {
  if (kind === 'kms' && support.sseKms === 'refused') {
    return 'a server that accepts SSE-KMS (Ceph RGW: a KMS backend, S3X_TEST_KMS_KEY_ID, and TLS or rgw_crypt_require_ssl off)'
  }
  if (kind === 'sse-c' && support.sseC === 'refused') return 'a server that accepts SSE-C (Ceph RGW: TLS, or rgw_crypt_require_ssl off)'
  return undefined
}

describe.each(['none', 'kms', 'sse-c'] as const)('every request of every writer carries the write options (encryption: %s)', (kind) => {
  let options: WriteOptions
  let ctx: S3Context
  const key = (name: string) => s3.key(`headers-${kind}/${name}`)

  beforeAll(() => {
    options = optionSet(kind)
    ctx = withWriteOptions(viaProxy, options)
  })

  function skipUnlessAccepted(skip: (note: string) => void): void {
    const missing = needs(kind)
    if (missing) skip(`needs ${missing}`)
  }

  it('putObject: one PutObject; a multipart upload (CreateMultipartUpload with all, parts and completion with SSE-C)', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const single = await requestsOf(() => putObject(ctx, key('small.bin'), randomBytes(1000)))
    expect(expectOptionsOnEveryRequest(single, options).get(key('small.bin'))).toEqual(['PutObject'])
    const big = await requestsOf(() => putObject(ctx, key('big.bin'), randomBytes(6 * MiB), { partSize: 5 * MiB }))
    const operations = expectOptionsOnEveryRequest(big, options).get(key('big.bin'))
    expect(operations?.filter((op) => op !== 'HeadObject')).toEqual([
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'CompleteMultipartUpload',
    ])
  })

  it("per call: putObject's options over the context's, putObjects' items over the stage's", async ({ skip }) => {
    skipUnlessAccepted(skip)
    const call = { metadata: { run: '7' }, storageClass: support.acceptedStorageClass }
    const one = await requestsOf(() => putObject(ctx, key('call.bin'), Buffer.from('x'), call))
    expectOptionsOnEveryRequest(one, { ...options, ...call })
    const items = [
      { key: key('items/a.bin'), data: Buffer.from('a') },
      { key: key('items/b.bin'), data: Buffer.from('b'), metadata: { item: 'b' } },
    ]
    const many = await requestsOf(() => Array.fromAsync(putObjects(ctx, { cacheControl: 'no-cache' })(items)))
    const puts = many.filter((request) => s3Operation(request) === 'PutObject')
    expect(puts.map(requestKey).sort()).toEqual([key('items/a.bin'), key('items/b.bin')])
    for (const request of puts) {
      const own = requestKey(request) === key('items/b.bin') ? { metadata: { item: 'b' } } : {}
      expectOptionsOnEveryRequest([request], { ...options, cacheControl: 'no-cache', ...own })
    }
  })

  it('shardInto: a small shard (one PUT) and a large one (part 1 sent last), and the manifest parts and root', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const items: ShardItem[] = [
      { source: randomBytes(100), member_path: 'a.bin' },
      { source: randomBytes(7 * MiB), member_path: 'big.bin' },
    ]
    const root = key('sharded/manifest.jsonl')
    let shards: string[] = []
    const requests = await requestsOf(async () => {
      const result = await pipe(
        items,
        shardInto(ctx, { prefix: key('sharded/shards'), maxEntries: 1 }),
        async function* (entries) {
          for await (const entry of entries) {
            shards.push(entry.archive_key)
            yield entry
          }
        },
        writeManifestParts(ctx, root),
      )
      expect(result.parts).toHaveLength(1)
    })
    const seen = expectOptionsOnEveryRequest(requests, options)
    shards = shards.sort()
    expect(seen.get(shards[0] as string)?.filter((op) => op !== 'HeadObject')).toEqual(['PutObject'])
    expect(seen.get(shards[1] as string)?.filter((op) => op !== 'HeadObject')).toEqual([
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'CompleteMultipartUpload',
    ])
    // The root: read (with the SSE-C key, when there is one), then written with every option.
    expect(seen.get(root)).toEqual(['GetObject', 'PutObject'])
  })

  it('writeManifestObject, appendToManifest (a new root: a GET, then a PUT) and compactInto', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const entries: ManifestEntry[] = [{ kind: 'file', key: key('x.bin') }]
    const manifest = key('m/manifest.jsonl')
    const written = await requestsOf(() => writeManifestObject(ctx, manifest, entries))
    expect(expectOptionsOnEveryRequest(written, options).get(manifest)).toEqual(['PutObject'])
    const root = key('m/root.jsonl')
    const appended = await requestsOf(() => appendToManifest(ctx, root, [{ kind: 'file', key: key('y.bin') }]))
    expect(expectOptionsOnEveryRequest(appended, options).get(root)).toEqual(['GetObject', 'PutObject'])
    const flat = key('m/flat.jsonl')
    const compacted = await requestsOf(() => pipe(readManifest(ctx, manifest), compactInto(ctx, flat)))
    const seen = expectOptionsOnEveryRequest(compacted, options)
    expect(seen.get(manifest)).toEqual(['GetObject'])
    expect(seen.get(flat)).toEqual(['PutObject'])
  })

  it('appendToManifest to an existing root: the read and the conditional write', async ({ skip }) => {
    skipUnlessAccepted(skip)
    if (!quotedIfMatch) skip('needs a server that honours If-Match with the quoted ETag on PutObject (Ceph RGW 16 answers 412)')
    const root = key('m/existing.jsonl')
    await writeManifestObject(ctx, root, [{ kind: 'file', key: key('x.bin') }])
    const appended = await requestsOf(() => appendToManifest(ctx, root, [{ kind: 'file', key: key('y.bin') }]))
    expect(expectOptionsOnEveryRequest(appended, options).get(root)).toEqual(['GetObject', 'PutObject'])
    expect(appended.find((request) => s3Operation(request) === 'PutObject')?.headers['if-match']).toMatch(/^".+"$/)
  })

  it('reads of such objects send the SSE-C key: whole, ranged, resumed and HEAD', async ({ skip }) => {
    skipUnlessAccepted(skip)
    const data = randomBytes(300_000)
    await putObject(ctx, key('read.bin'), data)
    let cut = 0
    const cutting = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) => (s3Operation(request) === 'GetObject' && cut++ === 0 ? { resetAfterBytes: 100_000 } : undefined),
    })
    const cutClient = s3.s3.createClient({ endpoint: cutting.endpoint })
    try {
      const cutCtx = { ...ctx, client: cutClient }
      const whole = await (await getObjectBody(cutCtx, key('read.bin'))).bytes()
      expect(Buffer.from(whole).equals(data)).toBe(true)
      const ranged = await (await getObjectBody(cutCtx, key('read.bin'), { start: 10, end: 19 })).bytes()
      expect(Buffer.from(ranged).equals(data.subarray(10, 20))).toBe(true)
      expect((await headObject(cutCtx, key('read.bin'))).ContentLength).toBe(data.byteLength)
      expect(cutting.resets).toBe(1)
      const reads = cutting.requests
      // The first GET, the resumed one (Range from the byte after the cut, If-Match), the ranged one, the HEAD.
      expect(reads.map(s3Operation)).toEqual(['GetObject', 'GetObject', 'GetObject', 'HeadObject'])
      expect(reads[1]?.headers.range).toMatch(/^bytes=\d+-$/)
      expect(reads[1]?.headers['if-match']).toBeDefined()
      expectOptionsOnEveryRequest(reads, options)
    } finally {
      cutClient.destroy()
      await cutting.stop()
    }
  })
})

describe('what the server keeps, read back', () => {
  const key = (name: string) => s3.key(`kept/${name}`)
  const head = (k: string, extra: object = {}) => s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: k, ...extra }))
  const tagsOf = async (k: string) => (await s3.client.send(new GetObjectTaggingCommand({ Bucket: s3.bucket, Key: k }))).TagSet

  /** One small object (a PUT) and one large (multipart), written by putObject with `options`. */
  async function writeBoth(name: string, options: WriteOptions): Promise<[string, string]> {
    const ctx = withWriteOptions<S3Context>({ client: s3.client, bucket: s3.bucket }, options)
    await putObject(ctx, key(`${name}-small`), randomBytes(10))
    await putObject(ctx, key(`${name}-large`), randomBytes(6 * MiB), { partSize: 5 * MiB })
    return [key(`${name}-small`), key(`${name}-large`)]
  }

  it('metadata, Cache-Control and Content-Encoding (single PUT and multipart)', async ({ skip }) => {
    if (!support.metadataStored || !support.headersStored)
      skip('needs a server that stores user metadata, Cache-Control and Content-Encoding')
    for (const k of await writeBoth('headers', {
      metadata: { team: 'asr', 'Sample-Rate': '16000' },
      cacheControl: 'no-cache',
      contentEncoding: 'identity',
    })) {
      const got: HeadObjectCommandOutput = await head(k)
      expect(got.Metadata, k).toStrictEqual({ team: 'asr', 'sample-rate': '16000' })
      expect(got.CacheControl, k).toBe('no-cache')
      expect(got.ContentEncoding, k).toBe('identity')
    }
  })

  it('tags of a single PUT', async ({ skip }) => {
    if (!support.tagsStored) skip('needs a server that stores tags (GetObjectTagging)')
    const [small] = await writeBoth('tags', { tagging: { team: 'asr', note: 'two words' } })
    expect(await tagsOf(small)).toEqual(
      expect.arrayContaining([
        { Key: 'team', Value: 'asr' },
        { Key: 'note', Value: 'two words' },
      ]),
    )
  })

  it('tags given at CreateMultipartUpload', async ({ skip }) => {
    if (!support.multipartTagsStored) skip('needs a server that stores the tags of CreateMultipartUpload (Ceph RGW 16 drops them)')
    const [, large] = await writeBoth('mp-tags', { tagging: 'team=asr' })
    expect(await tagsOf(large)).toEqual([{ Key: 'team', Value: 'asr' }])
  })

  it('the storage class (single PUT; multipart where the server reports it)', async ({ skip }) => {
    const storageClass = support.storedStorageClass
    if (storageClass === undefined) skip('needs a server that stores storage classes')
    const [small, large] = await writeBoth('class', { storageClass })
    expect((await head(small)).StorageClass).toBe(storageClass)
    if (support.multipartStorageClassStored) expect((await head(large)).StorageClass).toBe(storageClass)
  })

  it('a canned ACL', async ({ skip }) => {
    if (!support.aclStored) skip('needs a server that stores ACLs (GetObjectAcl)')
    const [small, large] = await writeBoth('acl', { acl: 'public-read' })
    for (const k of [small, large]) {
      const { Grants } = await s3.client.send(new GetObjectAclCommand({ Bucket: s3.bucket, Key: k }))
      expect(
        Grants?.some((grant) => grant.Permission === 'READ' && grant.Grantee?.URI?.endsWith('/global/AllUsers')),
        k,
      ).toBe(true)
    }
  })

  it('SSE-KMS: the server reports the encryption and the key', async ({ skip }) => {
    if (support.sseKms !== 'enforced') skip(`needs a server that stores SSE-KMS (this one: ${support.sseKms})`)
    for (const k of await writeBoth('kms', { serverSideEncryption: 'aws:kms', sseKmsKeyId: KMS_KEY_ID })) {
      const got = await head(k)
      expect(got.ServerSideEncryption, k).toBe('aws:kms')
      if (KMS_KEY_ID) expect(got.SSEKMSKeyId, k).toContain(KMS_KEY_ID)
    }
  })

  it('SSE-C: the server refuses reads without the key; with it, every read works', async ({ skip }) => {
    if (support.sseC !== 'enforced') skip(`needs a server that enforces SSE-C (this one: ${support.sseC})`)
    const options = { sseCustomerKey: { key: SSE_C_KEY } }
    const ctx = withWriteOptions<S3Context>({ client: s3.client, bucket: s3.bucket }, options)
    for (const k of await writeBoth('sse-c', options)) {
      await expect(s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: k })), k).rejects.toThrow()
      await expect(head(k), k).rejects.toThrow()
      expect((await headObject(ctx, k)).SSECustomerAlgorithm, k).toBe('AES256')
      const body = await getObjectBody(ctx, k, { start: 0, end: 4 })
      expect((await body.bytes()).byteLength, k).toBe(5)
    }
  })
})
