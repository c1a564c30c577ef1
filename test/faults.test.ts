/**
 * Reads and writes through faults at a rate (issue 7): a loopback proxy in front of the local S3
 * answers 5% of requests with 503 SlowDown or 500 InternalError, cuts 5% of GET responses at a
 * random point of their body, and drops the response of 5% of requests after the server carried
 * them out (`randomFaults`, seeded); the clients retry as a user's would (`retryQuickly`: the
 * SDK's own retry middleware and error classes, more attempts, short pauses).
 *
 * - Reads of loose objects (many small, a few of several MiB, one multipart) and of shards (plain
 *   tar and tar.gz) give exactly the bytes written (SHA-256) through iterObjects (default options,
 *   and shardConcurrency 1 with verify), iterObjectsFromKeys, getObject and downloadManifest.
 * - Writes (putObject single and multipart, putShardArchive + putSharded, writeManifest overwrite
 *   and append_parts, the ManifestWriter) complete, and everything they published reads back and
 *   verifies; no multipart upload is left open.
 * - Forced failures (every CompleteMultipartUpload, UploadPart or root PUT of one key refused)
 *   give a typed S3ExchangeError, leave the root manifest as it was (or absent), and leave no
 *   multipart upload open.
 * - A write the server carried out whose answer was lost (the SDK sends it again) is not reported
 *   as failed nor done twice: a root PUT (its repeat refused with 412), a CompleteMultipartUpload
 *   (its repeat answered NoSuchUpload, as MinIO and fauxqs do; AWS S3 answers it with success).
 * - A read of the root broken and resumed after another writer replaced it counts as a lost race.
 * - 8 writers × 25 append_parts on one root through a proxy that also enforces conditional writes
 *   end with all 200 refs, each exactly once, in each writer's order, every part readable.
 *
 * No S3 mocking: the faults happen on the wire only.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import {
  type MultipartUpload,
  type ProxiedRequest,
  type ProxyAction,
  pendingMultipartUploads,
  type RandomFaults,
  randomFaults,
  rejection,
  retryQuickly,
  type S3Proxy,
  startS3Proxy,
  trackMultipartUploads,
} from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import {
  type CommitResult,
  type EntryWithBody,
  type FileEntry,
  type ManifestEntry,
  PublishError,
  putObject,
  rememberServerCapabilities,
  S3ExchangeError,
  S3ExchangeStore,
  S3RequestError,
  type ShardEntry,
  type ShardItem,
} from 's3exchange'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const KiB = 1024
const MiB = 1024 * KiB
const s3 = useTestS3()
/** A store on a client straight to the server: to set up and to check, never under test. */
let clean: S3ExchangeStore
let dir: string
const proxies: S3Proxy[] = []
const clients: S3Client[] = []

beforeAll(() => {
  clean = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  dir = mkdtempSync(join(tmpdir(), 's3x-faults-'))
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  await Promise.all(proxies.map((proxy) => proxy.stop()))
  rmSync(dir, { recursive: true, force: true })
})

// ------------------------------------------------------------------------------------ helpers

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

/**
 * The faults every test runs under: 5% of requests answered 503/500; of the others, 5% of GETs cut
 * at a random point of the body, and 5% carried out by the server with the response dropped.
 */
const RATES = { rate: 0.05, resetRate: 0.05, dropRate: 0.05 } as const

interface FaultyStore {
  store: S3ExchangeStore
  faults: RandomFaults
  forced: RandomFaults | undefined
  proxy: S3Proxy
  /** Multipart uploads the faulty client started. */
  started: MultipartUpload[]
}

/**
 * A store whose client goes through a proxy injecting {@link RATES} faults (seeded), at most 3 in a
 * row on one key (a read resumes 3 times by default: more is a documented failure, tested in
 * resumable.test.ts). `force` picks requests that are always refused with `forceStatus`.
 */
async function faultyStore(
  seed: number,
  options: { force?: (request: ProxiedRequest) => boolean; forceStatus?: number; enforceConditionalWrites?: boolean } = {},
): Promise<FaultyStore> {
  const faults = randomFaults({ seed, ...RATES, maxInARow: 3 })
  const force = options.force
  const forced = force ? randomFaults({ seed, rate: 1, statuses: [options.forceStatus ?? 500], only: force }) : undefined
  const proxy = await startS3Proxy({
    target: s3.s3,
    enforceConditionalWrites: options.enforceConditionalWrites,
    intercept: (request): ProxyAction | undefined => forced?.(request) ?? faults(request),
  })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 10, baseDelayMs: 5, maxDelayMs: 200 }) })
  clients.push(client)
  const started = trackMultipartUploads(client)
  return { store: new S3ExchangeStore({ client, bucket: s3.bucket }), faults, forced, proxy, started }
}

/** The path of a path-style request, decoded, without the bucket: the key. */
function keyOf(request: ProxiedRequest): string {
  const path = decodeURIComponent(new URL(request.url, 'http://x').pathname)
  return path.slice(s3.bucket.length + 2)
}
const query = (request: ProxiedRequest) => new URL(request.url, 'http://x').searchParams
const isComplete = (request: ProxiedRequest) => request.method === 'POST' && query(request).has('uploadId')
const isUploadPart = (request: ProxiedRequest) => request.method === 'PUT' && query(request).has('partNumber')
const isSinglePut = (request: ProxiedRequest) => request.method === 'PUT' && !query(request).has('partNumber')

/** Every object of an iteration read to its end: key (virtual for members) → SHA-256. */
async function digests(objects: AsyncIterable<EntryWithBody>): Promise<Map<string, string>> {
  const read = new Map<string, string>()
  for await (const { entry, body } of objects) {
    const key = entry.kind === 'shard' ? entry.archive_key : entry.key
    expect(read.has(key), `${key} read twice`).toBe(false)
    read.set(key, sha256(await body.bytes()))
  }
  return read
}

async function head(key: string): Promise<{ etag: string; size: number } | undefined> {
  try {
    const response = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    return { etag: response.ETag ?? '', size: response.ContentLength ?? -1 }
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
    throw error
  }
}

async function bytesOf(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array(0))
}

/** The root as it is now, to compare with later. */
async function snapshot(key: string): Promise<{ key: string; etag: string | undefined; bytes: Buffer | undefined }> {
  const found = await head(key)
  return { key, etag: found?.etag, bytes: found ? await bytesOf(key) : undefined }
}

async function expectUnchanged(before: { key: string; etag: string | undefined; bytes: Buffer | undefined }): Promise<void> {
  const now = await snapshot(before.key)
  expect(now.etag).toBe(before.etag)
  if (before.bytes === undefined) expect(now.bytes).toBeUndefined()
  else expect(now.bytes?.equals(before.bytes)).toBe(true)
}

/** No upload the faulty client started is still open (asked through the clean client). */
async function expectNoOpenUploads(faulty: FaultyStore, prefix: string): Promise<void> {
  expect(await pendingMultipartUploads(s3.client, s3.bucket, faulty.started, { prefix })).toEqual([])
}

/** Bytes of `size`, random. */
const data = (size: number) => randomBytes(size)

/** The faults did happen: some error answers, some dropped answers, and (unless told) some cuts of bodies. */
function expectFaultsHit(faulty: FaultyStore, options: { resets?: boolean } = {}): void {
  expect(faulty.faults.injected.errors).toBeGreaterThan(0)
  expect(faulty.proxy.drops).toBeGreaterThan(0)
  if (options.resets ?? true) expect(faulty.proxy.resets).toBeGreaterThan(0)
}

// ------------------------------------------------------------------------------------ reads

describe('reads through 5% 503/500, 5% cut bodies and 5% dropped answers return the bytes written', () => {
  /** key (virtual for members) → SHA-256 of what was written. */
  const expected = new Map<string, string>()
  const looseKeys: string[] = []
  const memberKeys: string[] = []
  let root: string

  beforeAll(async () => {
    root = s3.key('reads/manifest.jsonl')
    // Loose: 150 small objects, and 3, 7 and 12 MiB ones (the last one a multipart upload).
    const loose: FileEntry[] = []
    const sizes = [...Array.from({ length: 150 }, (_, i) => 1 + ((i * 2731) % (40 * KiB))), 3 * MiB, 7 * MiB + 11, 12 * MiB + 5]
    for (const [i, size] of sizes.entries()) {
      const key = s3.key(`reads/loose/l-${String(i).padStart(3, '0')}.bin`)
      const bytes = data(size)
      loose.push(await clean.putObject(key, bytes))
      expected.set(key, sha256(bytes))
      looseKeys.push(key)
    }
    // Shards: a plain tar and a tar.gz of 50 members each, one of them of several MiB.
    const shards: ShardEntry[] = []
    for (const [name, compression, big] of [
      ['plain.tar', null, 3 * MiB + 3],
      ['gzip.tar.gz', 'gzip', 2 * MiB + 7],
    ] as const) {
      const archiveKey = s3.key(`reads/shards/${name}`)
      const items: ShardItem[] = Array.from({ length: 50 }, (_, i) => ({
        source: data(i === 25 ? big : 1 + ((i * 4099) % (64 * KiB))),
        member_path: `${name.split('.')[0]}/m-${String(i).padStart(2, '0')}.bin`,
        id: `${name}-${i}`,
      }))
      for (const item of items) {
        expected.set(`${archiveKey}#${item.member_path}`, sha256(item.source as Uint8Array))
        memberKeys.push(`${archiveKey}#${item.member_path}`)
      }
      shards.push((await clean.putShardArchive(archiveKey, items, { compression })).entry)
    }
    // The root: the loose entries, then a ref to a part with the two shards.
    await clean.writeManifest(root, loose)
    await clean.putSharded(root, shards)
  })

  it('iterObjects, default options', async () => {
    const faulty = await faultyStore(101)
    expect(await digests(faulty.store.iterObjects(root))).toStrictEqual(expected)
    expectFaultsHit(faulty)
  })

  it('iterObjects, shardConcurrency 1 and verify: true', async () => {
    const faulty = await faultyStore(102)
    expect(await digests(faulty.store.iterObjects(root, { shardConcurrency: 1, verify: true, concurrency: 4 }))).toStrictEqual(expected)
    expectFaultsHit(faulty)
  })

  it('iterObjectsFromKeys: every loose key and every member (streamed archives), then a few members (ranged GETs)', async () => {
    const faulty = await faultyStore(103)
    const all = await digests(faulty.store.iterObjectsFromKeys([...looseKeys, ...memberKeys], { verify: true }))
    expect(all).toStrictEqual(expected)
    // Few members of an archive whose index is known: read with one ranged GET each.
    const few = [memberKeys[3], memberKeys[25], memberKeys[60], memberKeys[75], memberKeys[99]] as string[]
    const some = await digests(faulty.store.iterObjectsFromKeys(few, { verify: true }))
    expect(some).toStrictEqual(new Map(few.map((key) => [key, expected.get(key)])))
    expectFaultsHit(faulty)
  })

  it('getObject: every loose key and every member by virtual key', async () => {
    const faulty = await faultyStore(104)
    const read = new Map<string, string>()
    for (const key of [...looseKeys, ...memberKeys]) read.set(key, sha256(await (await faulty.store.getObject(key)).bytes()))
    expect(read).toStrictEqual(expected)
    expectFaultsHit(faulty)
  })

  it('downloadManifest: every file on disk has the bytes written', async () => {
    const faulty = await faultyStore(105)
    const target = join(dir, 'download')
    const written = await faulty.store.downloadManifest(root, target)
    expect(new Set(written.keys())).toStrictEqual(new Set(expected.keys()))
    for (const [key, path] of written) expect(sha256(readFileSync(path)), key).toBe(expected.get(key))
    expectFaultsHit(faulty)
  })
})

// ------------------------------------------------------------------------------------ writes

/** Reads every object a manifest (or list of entries) names through the clean client, verified. */
async function verified(manifest: string | ManifestEntry[]): Promise<Map<string, string>> {
  return digests(clean.iterObjects(manifest, { verify: true }))
}

describe('writes through 5% 503/500, 5% cut GET bodies and 5% dropped answers complete, and what they published verifies', () => {
  it('putObject: single PUTs and multipart uploads (20 MiB)', async () => {
    const faulty = await faultyStore(201)
    const written = new Map<string, string>()
    const entries: FileEntry[] = []
    for (let i = 0; i < 60; i++) {
      const key = s3.key(`writes/put/small-${i}.bin`)
      const bytes = data(1 + ((i * 7919) % (256 * KiB)))
      entries.push(await faulty.store.putObject(key, bytes))
      written.set(key, sha256(bytes))
    }
    for (let i = 0; i < 3; i++) {
      const key = s3.key(`writes/put/big-${i}.bin`)
      const bytes = data(20 * MiB + i)
      entries.push(await faulty.store.putObject(key, bytes))
      written.set(key, sha256(bytes))
    }
    expect(faulty.started.length).toBeGreaterThanOrEqual(3)
    for (const entry of entries) expect(entry.sha256).toBe(written.get(entry.key))
    expect(await verified(entries)).toStrictEqual(written)
    expectFaultsHit(faulty, { resets: false })
    await expectNoOpenUploads(faulty, s3.key('writes/put/'))
  })

  it('putShardArchive (plain, gzip, some multipart) and putSharded, several times into one root', async () => {
    const faulty = await faultyStore(202)
    const root = s3.key('writes/sharded/manifest.jsonl')
    const written = new Map<string, string>()
    const entries: ShardEntry[] = []
    for (let i = 0; i < 24; i++) {
      const compression = i % 2 ? 'gzip' : null
      const archiveKey = s3.key(`writes/sharded/shards/s-${i}.tar${compression ? '.gz' : ''}`)
      const items: ShardItem[] = Array.from({ length: 20 }, (_, j) => ({
        source: data(i % 8 === 2 && j === 0 ? 12 * MiB : 1 + (((i + 1) * j * 5003) % (32 * KiB))),
        member_path: `m-${j}.bin`,
      }))
      for (const item of items) written.set(`${archiveKey}#${item.member_path}`, sha256(item.source as Uint8Array))
      entries.push((await faulty.store.putShardArchive(archiveKey, items, { compression })).entry)
    }
    expect(faulty.started.length).toBeGreaterThanOrEqual(3)
    for (let i = 0; i < entries.length; i += 3) await faulty.store.putSharded(root, entries.slice(i, i + 3))
    expect(await verified(root)).toStrictEqual(written)
    expectFaultsHit(faulty, { resets: false })
    await expectNoOpenUploads(faulty, s3.key('writes/sharded/'))
  })

  it('writeManifest: overwrite, then append_parts in several parts, onto the same root', async () => {
    const faulty = await faultyStore(203)
    const root = s3.key('writes/manifest/manifest.jsonl')
    const written = new Map<string, string>()
    const entries: FileEntry[] = []
    for (let i = 0; i < 80; i++) {
      const key = s3.key(`writes/manifest/o-${i}.bin`)
      const bytes = data(100 + i)
      entries.push(await clean.putObject(key, bytes))
      written.set(key, sha256(bytes))
    }
    await faulty.store.writeManifest(root, entries.slice(0, 20))
    for (let round = 0; round < 12; round++) {
      const result = (await faulty.store.writeManifest(root, entries.slice(20 + round * 5, 25 + round * 5), {
        mode: 'append_parts',
        partMaxEntries: 2,
      })) as CommitResult
      expect(result.parts).toHaveLength(3)
    }
    expect(await Array.fromAsync(clean.iterManifestEntries(root))).toStrictEqual(entries)
    expect(await verified(root)).toStrictEqual(written)
    expectFaultsHit(faulty, { resets: false }) // a dozen reads of the root: too few to count on a cut
  })

  it('the ManifestWriter: loose objects, shards (one multipart), entries, parts; published by close()', async () => {
    const faulty = await faultyStore(204)
    const root = s3.key('writes/writer/manifest.jsonl')
    const written = new Map<string, string>()
    const writer = faulty.store.openManifestWriter(root, { shardSize: { maxEntries: 30 }, partMaxEntries: 20 })
    for (let i = 0; i < 30; i++) {
      const key = s3.key(`writes/writer/loose-${i}.bin`)
      const bytes = data(1 + ((i * 3001) % (64 * KiB)))
      await writer.putObject(key, bytes)
      written.set(key, sha256(bytes))
    }
    for (let i = 0; i < 100; i++) {
      const bytes = data(i === 40 ? 11 * MiB : 1 + ((i * 6007) % (48 * KiB)))
      const member = await writer.addToShard(`w/m-${i}.bin`, bytes, { id: `m-${i}` })
      written.set(member.key, sha256(bytes))
    }
    const result = (await writer.close()) as CommitResult
    expect(result.parts.length).toBeGreaterThan(1)
    expect(faulty.started.length).toBeGreaterThanOrEqual(1)
    expect(await verified(root)).toStrictEqual(written)
    expectFaultsHit(faulty, { resets: false })
    await expectNoOpenUploads(faulty, s3.key('writes/writer/'))
  })
})

// ------------------------------------------------------------------------------------ forced failures

describe('a write that cannot get through fails typed, publishes nothing and leaves no upload open', () => {
  it('putObject, multipart, every CompleteMultipartUpload refused: S3RequestError, no object', async () => {
    const key = s3.key('fail/put/big.bin')
    const faulty = await faultyStore(301, { force: (request) => isComplete(request) && keyOf(request) === key })
    const error = await rejection(faulty.store.putObject(key, data(20 * MiB)))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ key, operation: 'CompleteMultipartUpload', statusCode: 500 })
    expect(faulty.forced?.injected.errors).toBe(10) // every attempt the client made
    expect(await head(key)).toBeUndefined()
    expect(faulty.started.map((upload) => upload.key)).toEqual([key])
    await expectNoOpenUploads(faulty, key)
  })

  it('putObject, single PUT, every PUT answered 503: S3RequestError, no object', async () => {
    const key = s3.key('fail/put/small.bin')
    const faulty = await faultyStore(302, { force: (request) => isSinglePut(request) && keyOf(request) === key, forceStatus: 503 })
    const error = await rejection(faulty.store.putObject(key, data(1000)))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ key, operation: 'PutObject', statusCode: 503 })
    expect(await head(key)).toBeUndefined()
  })

  it('putShardArchive, every UploadPart of the archive refused: a typed error, no archive, no open upload', async () => {
    const archiveKey = s3.key('fail/shard/big.tar')
    const faulty = await faultyStore(303, { force: (request) => isUploadPart(request) && keyOf(request) === archiveKey })
    const items: ShardItem[] = [
      { source: data(1000), member_path: 'a.bin' },
      { source: data(14 * MiB), member_path: 'b.bin' },
    ]
    const error = await rejection(faulty.store.putShardArchive(archiveKey, items, { compression: null }))
    expect(error).toBeInstanceOf(S3ExchangeError)
    expect(String(error)).toContain(archiveKey)
    expect(await head(archiveKey)).toBeUndefined()
    expect(faulty.started.map((upload) => upload.key)).toEqual([archiveKey])
    await expectNoOpenUploads(faulty, archiveKey)
  })

  it('writeManifest append_parts / putSharded, every PUT of the root refused: PublishError, root unchanged, the part listed', async () => {
    const root = s3.key('fail/append/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'before/1.bin' }])
    await clean.writeManifest(root, [{ kind: 'file', key: 'before/2.bin' }], { mode: 'append_parts' })
    const before = await snapshot(root)
    const faulty = await faultyStore(304, { force: (request) => isSinglePut(request) && keyOf(request) === root })
    const error = await rejection(faulty.store.writeManifest(root, [{ kind: 'file', key: 'new/1.bin' }], { mode: 'append_parts' }))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).key).toBe(root)
    expect((error as PublishError).cause).toBeInstanceOf(S3RequestError)
    const [part] = (error as PublishError).uploadedKeys
    expect(await bytesOf(part as string)).toStrictEqual(Buffer.from('{"kind":"file","key":"new/1.bin"}\n'))
    await expectUnchanged(before)

    const shard = (await clean.putShardArchive(s3.key('fail/append/s.tar.gz'), [{ source: data(10), member_path: 'x' }])).entry
    const sharded = await rejection(faulty.store.putSharded(root, [shard]))
    expect(sharded).toBeInstanceOf(PublishError)
    await expectUnchanged(before)
  })

  it('writeManifest overwrite of a root too big for one PUT, its completion refused: the old root stays, no open upload', async () => {
    const root = s3.key('fail/overwrite/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'old/1.bin' }])
    const before = await snapshot(root)
    const faulty = await faultyStore(305, { force: (request) => isComplete(request) && keyOf(request) === root })
    const pad = 'p'.repeat(9000)
    const entries: ManifestEntry[] = Array.from({ length: 1100 }, (_, i) => ({ kind: 'file', key: `new/${i}.bin`, meta: { pad } }))
    const error = await rejection(faulty.store.writeManifest(root, entries))
    expect(error).toBeInstanceOf(S3ExchangeError)
    expect(String(error)).toContain(root)
    await expectUnchanged(before)
    expect(faulty.started.map((upload) => upload.key)).toEqual([root])
    await expectNoOpenUploads(faulty, root)
  })

  it('ManifestWriter, a shard whose completion is refused: PublishError, the root absent, no open upload', async () => {
    const root = s3.key('fail/writer-shard/manifest.jsonl')
    const shardPrefix = s3.key('fail/writer-shard/shards/')
    const faulty = await faultyStore(306, { force: (request) => isComplete(request) && keyOf(request).startsWith(shardPrefix) })
    const writer = faulty.store.openManifestWriter(root, { shardSize: { maxEntries: 3 } })
    const loose = s3.key('fail/writer-shard/loose.bin')
    await writer.putObject(loose, data(500))
    await writer.addToShard('a.bin', data(100))
    await writer.addToShard('b.bin', data(12 * MiB))
    const error = await rejection(writer.addToShard('c.bin', data(100)))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).cause).toBeInstanceOf(S3RequestError)
    expect((error as PublishError).uploadedKeys).toEqual([loose])
    expect(writer.isClosed).toBe(true)
    expect(await head(root)).toBeUndefined()
    expect(await Array.fromAsync(clean.listKeys(shardPrefix))).toEqual([])
    expect(faulty.started.length).toBeGreaterThanOrEqual(1)
    await expectNoOpenUploads(faulty, s3.key('fail/writer-shard/'))
  })

  it('ManifestWriter, every PUT of the root refused at close(): PublishError listing what was uploaded, root unchanged', async () => {
    const root = s3.key('fail/writer-root/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'old/1.bin' }])
    const before = await snapshot(root)
    const faulty = await faultyStore(307, { force: (request) => isSinglePut(request) && keyOf(request) === root })
    const writer = faulty.store.openManifestWriter(root, { shardSize: { maxEntries: 5 }, partMaxEntries: 4 })
    for (let i = 0; i < 3; i++) await writer.putObject(s3.key(`fail/writer-root/loose-${i}.bin`), data(100 + i))
    for (let i = 0; i < 12; i++) await writer.addToShard(`m-${i}.bin`, data(i === 6 ? 11 * MiB : 200 + i))
    const error = await rejection(writer.close())
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).cause).toBeInstanceOf(S3RequestError)
    const uploaded = (error as PublishError).uploadedKeys
    // 3 loose objects, 3 shards (5 + 5 + 2 members), and the parts of the 6 entries.
    expect(uploaded.filter((key) => key.includes('/loose-'))).toHaveLength(3)
    expect(uploaded.filter((key) => key.includes('/shards/'))).toHaveLength(3)
    expect(uploaded.filter((key) => key.includes('/manifests/part-'))).toHaveLength(2)
    for (const key of uploaded) expect(await head(key), key).toBeDefined()
    await expectUnchanged(before)
    await expectNoOpenUploads(faulty, s3.key('fail/writer-root/'))
  })
})

// ------------------------------------------------------------------------------------ lost responses

/**
 * Tells `client` the If-Match form its server honours, as `probeServer` would (Ceph RGW 16: only the
 * bare ETag; a server that ignores conditions behind the enforcing proxy: any form), so that a
 * test's first conditional write is not spent learning it.
 */
function knowsItsServer(client: S3Client): void {
  const form = testServer().capabilities.conditionalPut
  rememberServerCapabilities(client, { conditionalPut: form === 'none' ? 'both' : form })
}

/** A store whose client goes through a proxy that drops the response to the first request `pick` accepts. */
async function droppingStore(pick: (request: ProxiedRequest) => boolean) {
  let dropped = 0
  const proxy = await startS3Proxy({
    target: s3.s3,
    enforceConditionalWrites: true,
    intercept: (request) => (pick(request) && dropped++ === 0 ? { dropResponse: true } : undefined),
  })
  proxies.push(proxy)
  const client = s3.s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 5, baseDelayMs: 5 }) })
  clients.push(client)
  knowsItsServer(client)
  const started = trackMultipartUploads(client)
  return { proxy, started, store: new S3ExchangeStore({ client, bucket: s3.bucket }) }
}

describe('a write carried out by the server whose response is lost (the client sends it again)', () => {
  it('append_parts: the root PUT was done; the retry is refused (412); the root holds the new ref once', async () => {
    const root = s3.key('lost/append/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'before.bin' }])
    const { proxy, store } = await droppingStore((request) => isSinglePut(request) && keyOf(request) === root)
    const result = (await store.writeManifest(root, [{ kind: 'file', key: 'new.bin' }], { mode: 'append_parts' })) as CommitResult
    expect(proxy.drops).toBe(1)
    expect(proxy.conflicts).toBe(1) // the SDK's repeat, refused: the root had changed (by the first)
    const refs = (await Array.fromAsync(clean.iterManifestEntries(root, { resolveRefs: false }))).filter(
      (entry) => entry.kind === 'manifest_ref',
    )
    expect(refs.map((entry) => entry.key)).toEqual(result.parts)
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(['before.bin', 'new.bin'])
  })

  it('putObject, multipart: CompleteMultipartUpload was done; its repeat is answered NoSuchUpload (as MinIO and fauxqs do): the entry, not an error', async () => {
    const key = s3.key('lost/put/big.bin')
    const bytes = data(20 * MiB)
    const { proxy, started, store } = await droppingStore((request) => isComplete(request) && keyOf(request) === key)
    const entry = await store.putObject(key, bytes)
    expect(proxy.drops).toBe(1)
    expect(proxy.requests.filter(isComplete)).toHaveLength(2) // the SDK sent it again
    expect(entry.sha256).toBe(sha256(bytes))
    expect(entry.size_bytes).toBe(bytes.byteLength)
    expect(`"${entry.etag}"`).toBe((await head(key))?.etag)
    expect(sha256(await bytesOf(key))).toBe(sha256(bytes))
    await expectNoOpenUploads({ started } as FaultyStore, key)
  })

  it('ManifestWriter overwrite, a root of several parts: its completion was done and its answer lost: close() gives the result', async () => {
    const root = s3.key('lost/overwrite/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'old.bin' }])
    const { proxy, store } = await droppingStore((request) => isComplete(request) && keyOf(request) === root)
    const writer = store.openManifestWriter(root, { mode: 'overwrite' })
    const pad = 'p'.repeat(9000)
    for (let i = 0; i < 1100; i++) await writer.addFile(`new/${i}.bin`, { meta: { pad } })
    const result = await writer.close()
    expect(proxy.drops).toBe(1)
    expect(proxy.requests.filter((request) => isComplete(request) && keyOf(request) === root)).toHaveLength(2) // sent again
    expect(result).toMatchObject({ key: root, entries: 1100 })
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(
      Array.from({ length: 1100 }, (_, i) => `new/${i}.bin`),
    )
  })
})

describe('a conditional write carried out whose answer was lost: the repeat is refused with 412', () => {
  it('putObject, multipart, ifNoneMatch: the completion landed; its repeat is refused: the entry, not an error', async () => {
    const key = s3.key('lost/conditional/big.bin')
    const bytes = data(20 * MiB)
    const { proxy, started, store } = await droppingStore((request) => isComplete(request) && keyOf(request) === key)
    // The enforcing proxy keeps the conditions of a completion (as AWS S3 does): the client is told so,
    // as probeServer would tell it; unknown, a conditional multipart write is refused before it starts.
    rememberServerCapabilities(store.client, { conditionalComplete: true })
    // A stream, so that it goes up as a multipart upload (bytes in memory with a condition are one PUT).
    const entry = await putObject(store.context(), key, Readable.from([bytes]), { ifNoneMatch: '*' })
    expect(proxy.drops).toBe(1)
    expect(proxy.conflicts).toBe(1)
    expect(entry).toMatchObject({ key, size_bytes: bytes.byteLength, sha256: sha256(bytes) })
    expect(`"${entry.etag}"`).toBe((await head(key))?.etag)
    await expectNoOpenUploads({ started } as FaultyStore, key)
  })

  it('putObject, single PUT, ifNoneMatch: the PUT landed; its repeat is refused: the entry, not an error', async () => {
    const key = s3.key('lost/conditional/small.bin')
    const bytes = data(64 * KiB)
    const { proxy, store } = await droppingStore((request) => isSinglePut(request) && keyOf(request) === key)
    const entry = await putObject(store.context(), key, bytes, { ifNoneMatch: '*' })
    expect(proxy.drops).toBe(1)
    expect(proxy.conflicts).toBe(1)
    expect(entry).toMatchObject({ key, size_bytes: bytes.byteLength, etag: createHash('md5').update(bytes).digest('hex') })
  })

  it('but a 412 on a repeat when another object is there (the first send was answered 503): S3RequestError 412, the other object kept', async () => {
    const key = s3.key('lost/conditional/taken.bin')
    const theirs = data(1000)
    await clean.putObject(key, theirs)
    let sent = 0
    // The proxy answers for the server: 503 to the first send (not carried out), then 412, as a
    // server that enforces If-None-Match answers when the key is taken.
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) => {
        if (!isSinglePut(request) || keyOf(request) !== key) return undefined
        return sent++ === 0 ? { status: 503, code: 'SlowDown' } : { status: 412, code: 'PreconditionFailed' }
      },
    })
    proxies.push(proxy)
    const client = s3.s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 5, baseDelayMs: 5 }) })
    clients.push(client)
    const store = new S3ExchangeStore({ client, bucket: s3.bucket })
    const error = await rejection(putObject(store.context(), key, data(1000), { ifNoneMatch: '*' }))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ key, statusCode: 412 })
    expect(sent).toBe(2)
    expect((await bytesOf(key)).equals(theirs)).toBe(true)
  })
})

describe('append_parts: the root PUT landed, its answer was lost, and every repeat is answered 503', () => {
  it('the root, read again, holds the append: done, the ref listed once', async () => {
    const root = s3.key('lost/landed/manifest.jsonl')
    await clean.writeManifest(root, [{ kind: 'file', key: 'before.bin' }])
    let rootPuts = 0
    // Conditions not enforced here, so that the repeats reach the intercept and get their 503s.
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) => {
        if (!isSinglePut(request) || keyOf(request) !== root) return undefined
        return rootPuts++ === 0 ? { dropResponse: true } : { status: 503, code: 'SlowDown' }
      },
    })
    proxies.push(proxy)
    const client = s3.s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 4, baseDelayMs: 5 }) })
    clients.push(client)
    knowsItsServer(client)
    const store = new S3ExchangeStore({ client, bucket: s3.bucket })
    const result = (await store.writeManifest(root, [{ kind: 'file', key: 'new.bin' }], { mode: 'append_parts' })) as CommitResult
    expect(proxy.drops).toBe(1)
    expect(rootPuts).toBe(4) // dropped, then 503 three times: the write failed as far as the SDK knows
    const refs = (await Array.fromAsync(clean.iterManifestEntries(root, { resolveRefs: false }))).filter(
      (entry) => entry.kind === 'manifest_ref',
    )
    expect(refs.map((entry) => entry.key)).toEqual(result.parts)
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(['before.bin', 'new.bin'])
  })
})

// ------------------------------------------------------------------------------------ concurrent appenders

describe('append_parts: the root read breaks and, on resuming, another writer has replaced it', () => {
  it('counts as a lost race: the root is read again and both appends are there', async () => {
    const root = s3.key('reread/manifest.jsonl')
    await clean.writeManifest(
      root,
      Array.from({ length: 20 }, (_, i): ManifestEntry => ({ kind: 'file', key: `before/${i}.bin` })),
    )
    let rootGets = 0
    let other: CommitResult | undefined
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: async (request) => {
        if (request.method !== 'GET' || keyOf(request) !== root) return undefined
        rootGets++
        // Cut the first read of the root; before the resumed read, another writer appends.
        if (rootGets === 1) return { resetAfterBytes: 100 }
        if (rootGets === 2)
          other = (await clean.writeManifest(root, [{ kind: 'file', key: 'other.bin' }], { mode: 'append_parts' })) as CommitResult
        return undefined
      },
    })
    proxies.push(proxy)
    const client = s3.s3.createClient({ endpoint: proxy.endpoint })
    clients.push(client)
    const mine = (await new S3ExchangeStore({ client, bucket: s3.bucket }).writeManifest(root, [{ kind: 'file', key: 'mine.bin' }], {
      mode: 'append_parts',
    })) as CommitResult
    const gets = proxy.requests.filter((request) => request.method === 'GET' && keyOf(request) === root)
    expect(gets).toHaveLength(3) // cut, resumed (refused: changed), read again
    expect(gets[1]?.headers['if-match']).toBeDefined()
    expect(gets[1]?.headers.range).toMatch(/^bytes=\d+-$/)
    expect(proxy.resets).toBe(1)
    const refs = (await Array.fromAsync(clean.iterManifestEntries(root, { resolveRefs: false }))).filter(
      (entry) => entry.kind === 'manifest_ref',
    )
    expect(refs.map((entry) => entry.key)).toEqual([...(other?.parts ?? ['?']), ...mine.parts])
    expect((await Array.fromAsync(clean.iterManifestEntries(root))).slice(20).map((entry) => entry.key)).toEqual(['other.bin', 'mine.bin'])
  })
})

describe('8 writers × 25 append_parts on one root, through faults and enforced conditional writes', () => {
  const WRITERS = 8
  const APPENDS = 25

  it('all 200 refs, each exactly once, in each writer order; every part readable', async () => {
    const faulty = await faultyStore(401, { enforceConditionalWrites: true })
    const root = s3.key('race/manifest.jsonl')
    const parts = (
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          const mine: string[] = []
          for (let i = 0; i < APPENDS; i++) {
            const result = (await faulty.store.writeManifest(root, [{ kind: 'file', key: `w${w}/${i}.bin`, id: `${w}-${i}` }], {
              mode: 'append_parts',
              maxAttempts: 500,
            })) as CommitResult
            expect(result.parts).toHaveLength(1)
            mine.push(...result.parts)
          }
          return mine
        }),
      )
    ).flat()
    expect(parts).toHaveLength(WRITERS * APPENDS)
    const refs = (await Array.fromAsync(clean.iterManifestEntries(root, { resolveRefs: false }))).map((entry) => {
      expect(entry.kind).toBe('manifest_ref')
      return entry.key as string
    })
    expect(refs).toHaveLength(WRITERS * APPENDS)
    expect(new Set(refs).size).toBe(WRITERS * APPENDS)
    expect([...refs].sort()).toEqual([...parts].sort())
    // Every part is there and holds its one entry; each writer's entries are in its own order.
    const entries = await Array.fromAsync(clean.iterManifestEntries(root))
    expect(entries).toHaveLength(WRITERS * APPENDS)
    for (let w = 0; w < WRITERS; w++) {
      expect(entries.filter((entry) => (entry.key as string).startsWith(`w${w}/`)).map((entry) => entry.key)).toEqual(
        Array.from({ length: APPENDS }, (_, i) => `w${w}/${i}.bin`),
      )
    }
    expect(faulty.proxy.conflicts).toBeGreaterThan(0)
    expectFaultsHit(faulty)
  })
})
