/**
 * ManifestWriter (store.openManifestWriter) against a real (local) S3: entries, files, refs and
 * uploads; parts rotating at partMaxEntries and published by close() in one root update; shards
 * flushed at shardSize with Python's rule and named uniquely per writer; overwrite mode; stats();
 * `await using` without close(); failures midway (PublishError, root untouched, uploads aborted)
 * with and without publishOnError; and Python's json and tarfile reading what it wrote.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { countRequests, rejection, startS3Proxy } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CommitResult,
  ConfigurationError,
  type FileEntry,
  InvalidSourceError,
  ManifestConflictError,
  type ManifestEntry,
  ManifestWriter,
  PublishError,
  rememberServerCapabilities,
  S3ExchangeError,
  type ShardEntry,
  ShardWriteError,
  serializeEntry,
  type WrittenManifest,
} from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore
let dir: string
const extraClients: S3Client[] = []

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  dir = mkdtempSync(join(tmpdir(), 's3x-writer-'))
})

afterAll(() => {
  for (const client of extraClients) client.destroy()
  rmSync(dir, { recursive: true, force: true })
})

// ------------------------------------------------------------------ helpers

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

async function bytesOf(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array(0))
}

async function textOf(key: string): Promise<string> {
  return (await bytesOf(key)).toString('utf8')
}

async function head(key: string): Promise<{ etag: string; size: number } | undefined> {
  try {
    const response = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    return { etag: (response.ETag ?? '').replace(/"/g, ''), size: response.ContentLength ?? -1 }
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
    throw error
  }
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

function lineBytes(entry: ManifestEntry): number {
  return Buffer.byteLength(`${serializeEntry(entry)}\n`)
}

function refsOf(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ManifestEntry)
    .filter((entry) => entry.kind === 'manifest_ref')
    .map((entry) => entry.key as string)
}

/** A store whose client records the multipart uploads it creates and counts its requests. */
function trackedStore(): { store: S3ExchangeStore; created: Map<string, string>; counts: Record<string, number> } {
  const client = s3.s3.createClient()
  extraClients.push(client)
  const created = new Map<string, string>()
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args)
      if (context.commandName === 'CreateMultipartUploadCommand') {
        const uploadId = (result.output as { UploadId?: string }).UploadId
        if (uploadId) created.set(uploadId, (args.input as { Key: string }).Key)
      }
      return result
    },
    { step: 'initialize', name: 's3x-track-uploads' },
  )
  const counts = countRequests(client)
  return { store: new S3ExchangeStore({ client, bucket: s3.bucket }), created, counts }
}

/**
 * Keys of multipart uploads still open: listed by the server (a real S3; the embedded one does not
 * list them), or among `created` and still accepting a part (completed or aborted ones answer
 * NoSuchUpload). Open ones are aborted here.
 */
async function openUploads(created: Map<string, string>, prefix: string): Promise<string[]> {
  const open: string[] = []
  const listed = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }))
  for (const upload of listed.Uploads ?? []) open.push(upload.Key ?? '?')
  for (const [uploadId, key] of created) {
    try {
      await s3.client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId, PartNumber: 9999, Body: 'probe' }))
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchUpload') continue
      throw error
    }
    if (!open.includes(key)) open.push(key)
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId }))
  }
  return open
}

/** A root manifest that already exists, and its ETag and bytes. */
async function existingRoot(name: string): Promise<{ root: string; etag: string; bytes: Buffer }> {
  const root = s3.key(`${name}/manifest.jsonl`)
  await put(root, '{"kind":"file","key":"before/1.wav","id":"1"}\n')
  return { root, etag: (await head(root))?.etag as string, bytes: await bytesOf(root) }
}

async function expectUnchanged(root: { root: string; etag: string; bytes: Buffer }): Promise<void> {
  expect((await head(root.root))?.etag).toBe(root.etag)
  expect((await bytesOf(root.root)).equals(root.bytes)).toBe(true)
}

/** `[member path or key, bytes]` of every object the manifest names, shards expanded. */
async function objects(root: string): Promise<[string, Buffer][]> {
  const got: [string, Buffer][] = []
  for await (const { entry, body } of store.iterObjects(root))
    got.push([(entry.member_path ?? entry.key) as string, Buffer.from(await body.bytes())])
  return got
}

function python(script: string, args: string[]): unknown {
  const run = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`python3 failed (${run.status}): ${run.stderr}`)
  return JSON.parse(run.stdout)
}

const SHARD_KEY = /\/shards\/shard-\d{8}-\d{6}-[0-9a-f]{6}-\d{5}\.tar(\.gz)?$/
const PART_KEY = /\/manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/

// ------------------------------------------------------------------ construction

describe('construction', () => {
  it('defaults: append_parts, shards beside the manifest, open', () => {
    const writer = store.openManifestWriter(s3.key('ctor/a/manifest.jsonl'))
    expect(writer).toBeInstanceOf(ManifestWriter)
    expect(writer.mode).toBe('append_parts')
    expect(writer.key).toBe(s3.key('ctor/a/manifest.jsonl'))
    expect(writer.shardPrefix).toBe(s3.key('ctor/a/shards'))
    expect(writer.isClosed).toBe(false)
    expect(writer.stats()).toEqual({
      partEntries: 0,
      partBytes: 0,
      partsUploaded: 0,
      shardEntries: 0,
      shardBytes: 0,
      shardsCreated: 0,
      isClosed: false,
    })
    expect(store.openManifestWriter('top.jsonl').shardPrefix).toBe('shards')
    expect(store.openManifestWriter('a/m.jsonl', { shardPrefix: 'x/y/' }).shardPrefix).toBe('x/y')
  })

  it('a bad mode, an empty shardSize or another format is ConfigurationError', () => {
    expect(() => store.openManifestWriter('a/m.jsonl', { mode: 'append' as never })).toThrow(ConfigurationError)
    expect(() => store.openManifestWriter('a/m.jsonl', { shardSize: {} })).toThrow(ConfigurationError)
    expect(() => store.openManifestWriter('a/m.jsonl', { shardFormat: 'zip' as never })).toThrow(ConfigurationError)
    expect(() => store.openManifestWriter('a/m.jsonl', { shardCompression: 'bzip2' as never })).toThrow(
      expect.objectContaining({ name: 'ConfigurationError', option: 'shardCompression', call: 'openManifestWriter' }),
    )
  })
})

// ------------------------------------------------------------------ append_parts

describe('append_parts mode', () => {
  it('addEntry, addFile, addManifest, putObject: nothing published before close(), then everything, in call order', async () => {
    const root = s3.key('basic/manifest.jsonl')
    const other = s3.key('basic/other.jsonl')
    await store.writeManifest(other, [{ kind: 'file', key: 'other/1.wav' }])
    const writer = store.openManifestWriter(root)

    await writer.addEntry({ kind: 'file', key: 'given/ü.wav', id: 'x', custom: 1 })
    const file = await writer.addFile('exists/clip-9.wav', { sizeBytes: 10, meta: { sr: 8000 } })
    expect(file).toStrictEqual({
      kind: 'file',
      key: 'exists/clip-9.wav',
      id: 'clip-9',
      meta: { sr: 8000 },
      content_type: null,
      size_bytes: 10,
      etag: null,
    })
    expect(Object.keys(file)).toEqual(['kind', 'key', 'id', 'meta', 'content_type', 'size_bytes', 'etag'])
    const full = await writer.addFile('exists/b.wav', { id: 'b', contentType: 'audio/wav', etag: 'e', meta: null, sizeBytes: 2 })
    expect(serializeEntry(full)).toBe(
      '{"kind":"file","key":"exists/b.wav","id":"b","meta":null,"content_type":"audio/wav","size_bytes":2,"etag":"e"}',
    )
    const ref = await writer.addManifest(other)
    expect(ref).toStrictEqual({ kind: 'manifest_ref', key: other })
    const uploadedKey = s3.key('basic/up.txt')
    const uploaded = await writer.putObject(uploadedKey, Buffer.from('uploaded'), { meta: { a: 1 }, contentType: 'text/plain' })
    expect(uploaded).toStrictEqual({
      kind: 'file',
      key: uploadedKey,
      id: 'up',
      meta: { a: 1 },
      content_type: 'text/plain',
      size_bytes: 8,
      etag: (await head(uploadedKey))?.etag,
      sha256: sha256('uploaded'),
    })

    expect(await head(root)).toBeUndefined()
    expect(await Array.fromAsync(store.listKeys(s3.key('basic/manifests/')))).toEqual([])
    const result = (await writer.close()) as CommitResult
    expect(writer.isClosed).toBe(true)
    expect(writer.stats().isClosed).toBe(true)
    expect(result.parts).toHaveLength(1)
    expect(result.entries).toBe(5)
    expect(result.parts[0]).toMatch(PART_KEY)
    expect(await textOf(root)).toBe(`{"kind":"manifest_ref","key":"${result.parts[0]}"}\n`)
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual([
      { kind: 'file', key: 'given/ü.wav', id: 'x', custom: 1 },
      file,
      full,
      { kind: 'file', key: 'other/1.wav' },
      uploaded,
    ])
  })

  it('putObject calls made without awaiting upload in parallel and land in call order', async () => {
    const root = s3.key('parallel/manifest.jsonl')
    const writer = store.openManifestWriter(root)
    const keys = Array.from({ length: 6 }, (_, i) => s3.key(`parallel/${i}.bin`))
    // Bigger first, so later uploads tend to finish first.
    const calls = keys.map((key, i) => writer.putObject(key, randomBytes((6 - i) * 50_000)))
    const closing = writer.close() // queued behind the uploads
    const entries = await Promise.all(calls)
    await closing
    expect(entries.map((entry) => entry.key)).toEqual(keys)
    expect((await Array.fromAsync(store.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(keys)
  })

  it('parts rotate at partMaxEntries; stats() is exact at each step; close() publishes every part in one root write', async () => {
    const root = s3.key('rotate/manifest.jsonl')
    const { store: tracked, counts } = trackedStore()
    const writer = tracked.openManifestWriter(root, { partMaxEntries: 3 })
    const entries: FileEntry[] = Array.from({ length: 7 }, (_, i) => ({ kind: 'file', key: `r/${i}.wav`, id: String(i), meta: { i } }))

    await writer.addEntry(entries[0] as FileEntry)
    await writer.addEntry(entries[1] as FileEntry)
    expect(writer.stats()).toEqual({
      partEntries: 2,
      partBytes: lineBytes(entries[0] as FileEntry) + lineBytes(entries[1] as FileEntry),
      partsUploaded: 0,
      shardEntries: 0,
      shardBytes: 0,
      shardsCreated: 0,
      isClosed: false,
    })
    await writer.addEntry(entries[2] as FileEntry)
    expect(writer.stats()).toMatchObject({ partEntries: 0, partBytes: 0, partsUploaded: 1 })
    for (const entry of entries.slice(3)) await writer.addEntry(entry)
    expect(writer.stats()).toMatchObject({ partEntries: 1, partBytes: lineBytes(entries[6] as FileEntry), partsUploaded: 2 })
    const partsBefore = await Array.fromAsync(store.listKeys(s3.key('rotate/manifests/')))
    expect(partsBefore).toHaveLength(2)
    expect(await head(root)).toBeUndefined()

    const putsBefore = counts.PutObjectCommand ?? 0
    const result = (await writer.close()) as CommitResult
    expect(writer.stats()).toMatchObject({ partEntries: 0, partsUploaded: 3, isClosed: true })
    expect((counts.PutObjectCommand ?? 0) - putsBefore).toBe(2) // the last part, then the root once
    expect(result.parts).toHaveLength(3)
    expect(result.entries).toBe(7)
    expect(refsOf(await textOf(root))).toEqual(result.parts)
    expect([...partsBefore].sort()).toEqual(result.parts.slice(0, 2).sort())
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual(entries)
  })

  it('flushPart() uploads the current part and resolves to its key; with nothing pending, to undefined', async () => {
    const root = s3.key('flushpart/manifest.jsonl')
    const writer = store.openManifestWriter(root)
    expect(await writer.flushPart()).toBeUndefined()
    await writer.addFile('f/1.wav')
    const part = await writer.flushPart()
    expect(part).toMatch(PART_KEY)
    expect(await textOf(part as string)).toBe(
      `${serializeEntry({ kind: 'file', key: 'f/1.wav', id: '1', meta: null, content_type: null, size_bytes: null, etag: null })}\n`,
    )
    expect(writer.stats()).toMatchObject({ partEntries: 0, partsUploaded: 1 })
    expect(await writer.flushPart()).toBeUndefined()
    expect(await head(root)).toBeUndefined()
    const result = (await writer.close()) as CommitResult
    expect(result.parts).toEqual([part])
  })

  it('close() with nothing written publishes nothing and leaves the root alone', async () => {
    const root = await existingRoot('nothing')
    const writer = store.openManifestWriter(root.root)
    const result = (await writer.close()) as CommitResult
    expect(result.parts).toEqual([])
    await expectUnchanged(root)
  })

  it('an existing root keeps its lines byte for byte and gains one ref per part', async () => {
    const root = await existingRoot('existing')
    const writer = store.openManifestWriter(root.root, { partMaxEntries: 1 })
    await writer.addFile('n/1.wav')
    await writer.addFile('n/2.wav')
    const result = (await writer.close()) as CommitResult
    expect(await textOf(root.root)).toBe(
      root.bytes.toString() + result.parts.map((key) => `{"kind":"manifest_ref","key":"${key}"}\n`).join(''),
    )
    expect((await Array.fromAsync(store.iterManifestEntries(root.root))).map((entry) => entry.key)).toEqual([
      'before/1.wav',
      'n/1.wav',
      'n/2.wav',
    ])
  })

  it('close() whose root update keeps conflicting: PublishError listing the parts and shards, root unchanged', async () => {
    const root = await existingRoot('commit-fail')
    const rootPath = `/${s3.bucket}/${root.root}`
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) =>
        request.method === 'PUT' && request.url.split('?')[0] === rootPath ? { status: 412, code: 'PreconditionFailed' } : undefined,
    })
    const client = s3.s3.createClient({ endpoint: proxy.endpoint })
    // Told the If-Match form its server honours (as probeServer tells it), a 412 is a lost race; a new
    // client would first check, by a HEAD, whether the server refused its form instead.
    rememberServerCapabilities(client, { conditionalPut: 'both' })
    try {
      const racing = new S3ExchangeStore({ client, bucket: s3.bucket })
      const writer = racing.openManifestWriter(root.root, { maxCommitAttempts: 2, shardSize: { maxEntries: 5 } })
      await writer.addFile('x/1.wav')
      await writer.addToShard('m.txt', Buffer.from('m'))
      const error = await rejection(writer.close())
      expect(error).toBeInstanceOf(PublishError)
      expect((error as PublishError).cause).toBeInstanceOf(ManifestConflictError)
      const uploaded = (error as PublishError).uploadedKeys
      expect(uploaded).toHaveLength(2)
      expect(uploaded.find((key) => PART_KEY.test(key))).toBeDefined()
      expect(uploaded.find((key) => SHARD_KEY.test(key))).toBeDefined()
      for (const key of uploaded) expect(await head(key)).toBeDefined()
      expect(writer.isClosed).toBe(true)
      await expectUnchanged(root)
    } finally {
      client.destroy()
      await proxy.stop()
    }
  })

  it('calls after close() reject with ConfigurationError (an S3ExchangeError) and change nothing', async () => {
    const root = s3.key('after-close/manifest.jsonl')
    const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 10 } })
    await writer.addFile('a/1.wav')
    await writer.close()
    const bytes = await bytesOf(root)
    const attempts: [string, () => Promise<unknown>][] = [
      ['addEntry', () => writer.addEntry({ kind: 'file', key: 'x' })],
      ['addFile', () => writer.addFile('x')],
      ['addManifest', () => writer.addManifest('x.jsonl')],
      ['putObject', () => writer.putObject(s3.key('after-close/x.bin'), Buffer.from('x'))],
      ['addToShard', () => writer.addToShard('x.bin', Buffer.from('x'))],
      ['addShardItem', () => writer.addShardItem({ source: Buffer.from('x'), member_path: 'x.bin' })],
      ['flushPart', () => writer.flushPart()],
      ['flushShard', () => writer.flushShard()],
      ['close', () => writer.close()],
    ]
    for (const [name, call] of attempts) {
      const error = await rejection(call())
      expect(error, name).toBeInstanceOf(ConfigurationError)
      expect(error, name).toBeInstanceOf(S3ExchangeError)
    }
    expect((await bytesOf(root)).equals(bytes)).toBe(true)
    expect(await head(s3.key('after-close/x.bin'))).toBeUndefined()
  })
})

// ------------------------------------------------------------------ shards

describe('shard buffering', () => {
  it('shards flush once they hold maxEntries members; stats() follows; iterObjects reads every member back', async () => {
    const root = s3.key('sh-entries/manifest.jsonl')
    const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 3 } })
    const data = Array.from({ length: 7 }, (_, i) => randomBytes(10 + i))
    const returned: FileEntry[] = []
    for (const [i, bytes] of data.entries()) {
      returned.push(await writer.addToShard(`m/${i}.bin`, bytes, { id: `m${i}` }))
      if (i === 1) expect(writer.stats()).toMatchObject({ shardEntries: 2, shardBytes: 10 + 11, shardsCreated: 0, partEntries: 0 })
      if (i === 2) expect(writer.stats()).toMatchObject({ shardEntries: 0, shardBytes: 0, shardsCreated: 1, partEntries: 1 })
    }
    expect(writer.stats()).toMatchObject({ shardEntries: 1, shardBytes: 16, shardsCreated: 2, partEntries: 2 })
    const first = returned[0] as FileEntry
    expect(first).toMatchObject({ kind: 'file', member_path: 'm/0.bin', id: 'm0', meta: null, size_bytes: 10 })
    expect(first.key).toMatch(/\.tar\.gz#m\/0\.bin$/)

    await writer.close()
    expect(writer.stats()).toMatchObject({ shardsCreated: 3, shardEntries: 0 })
    const shards = (await Array.fromAsync(store.iterManifestEntries(root))) as ShardEntry[]
    expect(shards.map((entry) => entry.kind)).toEqual(['shard', 'shard', 'shard'])
    expect(shards.map((entry) => entry.count)).toEqual([3, 3, 1])
    for (const [i, shard] of shards.entries()) {
      expect(shard.archive_key).toMatch(SHARD_KEY)
      expect(shard.archive_key.startsWith(s3.key('sh-entries/shards/'))).toBe(true)
      // The library's one default for shards it names: gzip, numbered from 0 on 5 digits, as shardInto.
      expect(shard.compression).toBe('gzip')
      expect(shard.archive_key.endsWith(`-${String(i).padStart(5, '0')}.tar.gz`)).toBe(true)
    }
    expect(new Set(shards.map((entry) => entry.archive_key)).size).toBe(3)
    const got = await objects(root)
    expect(got.map(([path]) => path)).toEqual(data.map((_, i) => `m/${i}.bin`))
    for (const [i, [, bytes]] of got.entries()) expect(bytes.equals(data[i] as Buffer)).toBe(true)
    // Member entries as returned by addToShard are the shard's internal manifest entries.
    const members = await Array.fromAsync(store.getShard(shards[0]?.archive_key as string).getManifest())
    // (offset, gz_offset and gz_size, where a member is in the archive, are only known when the shard is complete)
    expect(members.map(({ offset: _, gz_offset: __, gz_size: ___, ...entry }) => entry)).toStrictEqual(returned.slice(0, 3))
  })

  it("shardCompression: 'zstd' writes seekable .tar.zst shards; iterObjects and getObject read them back", async () => {
    const root = s3.key('sh-zstd/manifest.jsonl')
    const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 4 }, shardCompression: 'zstd' })
    const data = Array.from({ length: 6 }, (_, i) => Buffer.from(`zstd member ${i} `.repeat(50 * (i + 1))))
    for (const [i, bytes] of data.entries()) await writer.addToShard(`z/${i}.txt`, bytes)
    await writer.close()
    const shards = (await Array.fromAsync(store.iterManifestEntries(root))) as ShardEntry[]
    expect(shards.map((entry) => [entry.compression, entry.count])).toEqual([
      ['zstd', 4],
      ['zstd', 2],
    ])
    for (const shard of shards) expect(shard.archive_key).toMatch(/\/shard-\d{8}-\d{6}-[0-9a-f]{6}-\d{5}\.tar\.zst$/)
    const got = await objects(root)
    expect(got.map(([path]) => path)).toEqual(data.map((_, i) => `z/${i}.txt`))
    for (const [i, [, bytes]] of got.entries()) expect(bytes.equals(data[i] as Buffer)).toBe(true)
    const members = await Array.fromAsync(store.getShard(shards[1]?.archive_key as string).getManifest())
    expect(members.map((entry) => typeof entry.zst_offset)).toEqual(['number', 'number'])
    expect((await (await store.getObject(`${shards[1]?.archive_key}#z/5.txt`)).bytes()).toString()).toBe(data[5]?.toString())
  })

  it("maxBytes: Python's rule, a shard is written once its bytes reach the limit (after adding)", async () => {
    const root = s3.key('sh-bytes/manifest.jsonl')
    const writer = store.openManifestWriter(root, { shardSize: { maxBytes: 100 } })
    const sizes = [50, 50, 30, 30, 30, 10, 200, 5]
    const counts: number[] = []
    for (const [i, size] of sizes.entries()) {
      await writer.addToShard(`b/${i}.bin`, randomBytes(size))
      counts.push(writer.stats().shardsCreated)
    }
    // 50+50 reach 100: flushed; 30+30+30 = 90, +10 = 100: flushed; 200 alone: flushed; 5 is pending.
    expect(counts).toEqual([0, 1, 1, 1, 1, 2, 3, 3])
    expect(writer.stats()).toMatchObject({ shardEntries: 1, shardBytes: 5 })
    await writer.close()
    const shards = (await Array.fromAsync(store.iterManifestEntries(root))) as ShardEntry[]
    expect(shards.map((entry) => entry.count)).toEqual([2, 4, 1, 1])
  })

  it('both limits: whichever is reached first', async () => {
    const writer = store.openManifestWriter(s3.key('sh-both/manifest.jsonl'), { shardSize: { maxEntries: 3, maxBytes: 100 } })
    for (const [i, size] of [10, 10, 10, 90, 20, 1].entries()) await writer.addToShard(`x/${i}.bin`, randomBytes(size))
    expect(writer.stats()).toMatchObject({ shardsCreated: 2, shardEntries: 1 })
    await writer.abort()
  })

  it('addToShard: contentType goes into meta.content_type (merged with meta); sources of every kind', async () => {
    const root = s3.key('sh-kinds/manifest.jsonl')
    const path = join(dir, 'kinds.wav')
    const fromFile = randomBytes(700)
    writeFileSync(path, fromFile)
    const readable = randomBytes(1500)
    const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 100 }, shardCompression: 'gzip' })
    const a = await writer.addToShard('a.wav', Buffer.from('aaa'), { id: 'a', meta: { sr: 16000 }, contentType: 'audio/wav' })
    const b = await writer.addToShard('b.wav', path, { contentType: 'audio/wav' })
    const c = await writer.addToShard('c.bin', Readable.from([readable]), { sizeBytes: readable.byteLength })
    const d = await writer.addToShard('d.bin', Readable.from([Buffer.from('no size given')]))
    const e = await writer.addShardItem({ source: Buffer.from('eee'), member_path: 'ü/e.txt', id: 'e', meta: { k: 'v' } })
    const f = await writer.addToShard('f.bin', Buffer.from('f'), { meta: {} }) // Python writes an empty meta as null
    expect(a).toMatchObject({ id: 'a', meta: { sr: 16000, content_type: 'audio/wav' }, size_bytes: 3 })
    expect(b).toMatchObject({ id: null, meta: { content_type: 'audio/wav' }, size_bytes: 700 })
    expect(c).toMatchObject({ meta: null, size_bytes: 1500 })
    expect(d).toMatchObject({ meta: null, size_bytes: 13 })
    expect(e).toMatchObject({ id: 'e', meta: { k: 'v' }, member_path: 'ü/e.txt' })
    expect(f.meta).toBeNull()
    const shard = (await writer.flushShard()) as ShardEntry
    expect(shard).toMatchObject({ kind: 'shard', compression: 'gzip', count: 6 })
    expect(shard.archive_key.endsWith('.tar.gz')).toBe(true)
    expect(shard.size_bytes).toBe((await head(shard.archive_key))?.size)
    expect(shard.meta).toEqual({ etag: (await head(shard.archive_key))?.etag })
    expect(await writer.flushShard()).toBeUndefined()
    expect(writer.stats()).toMatchObject({ shardsCreated: 1, shardEntries: 0, partEntries: 1 })
    await writer.close()
    const got = await objects(root)
    expect(got.map(([p]) => p)).toEqual(['a.wav', 'b.wav', 'c.bin', 'd.bin', 'ü/e.txt', 'f.bin'])
    expect(got.map(([, bytes]) => sha256(bytes))).toEqual(
      [Buffer.from('aaa'), fromFile, readable, Buffer.from('no size given'), Buffer.from('eee'), Buffer.from('f')].map(sha256),
    )
  })

  it('addShardItem / addToShard without shardSize is ConfigurationError', async () => {
    const root = s3.key('sh-disabled/manifest.jsonl')
    const writer = store.openManifestWriter(root)
    expect(await rejection(writer.addShardItem({ source: Buffer.from('x'), member_path: 'x' }))).toBeInstanceOf(ConfigurationError)
    expect(await rejection(writer.addToShard('x', Buffer.from('x')))).toBeInstanceOf(ConfigurationError)
    // A usage error, as Python's RuntimeError: the writer is still usable.
    expect(writer.isClosed).toBe(false)
    await writer.addFile('still/works.wav')
    await writer.close()
    expect((await Array.fromAsync(store.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(['still/works.wav'])
  })

  it('two writers on the same prefix never overwrite each other’s shards', async () => {
    const root = s3.key('sh-two/manifest.jsonl')
    const one = store.openManifestWriter(root, { shardSize: { maxEntries: 1 } })
    const two = store.openManifestWriter(root, { shardSize: { maxEntries: 1 } })
    const data = (w: number, i: number) => Buffer.from(`writer ${w} item ${i}`)
    for (let i = 0; i < 2; i++) {
      await one.addToShard('same.txt', data(1, i))
      await two.addToShard('same.txt', data(2, i))
    }
    await one.close()
    await two.close()
    const shards = (await Array.fromAsync(store.iterManifestEntries(root))) as ShardEntry[]
    expect(shards).toHaveLength(4)
    expect(new Set(shards.map((entry) => entry.archive_key)).size).toBe(4)
    expect(await Array.fromAsync(store.listKeys(s3.key('sh-two/shards/')))).toHaveLength(4)
    const got = (await objects(root)).map(([, bytes]) => bytes.toString())
    expect(got).toEqual([data(1, 0), data(1, 1), data(2, 0), data(2, 1)].map(String))
  })
})

// ------------------------------------------------------------------ overwrite mode

describe('overwrite mode', () => {
  it('writes every entry to the root at close() and nothing before; no parts', async () => {
    const root = await existingRoot('ow')
    const writer = store.openManifestWriter(root.root, { mode: 'overwrite', shardSize: { maxEntries: 2 }, partMaxEntries: 1 })
    expect(writer.mode).toBe('overwrite')
    await writer.addFile('o/1.wav')
    await writer.addManifest(s3.key('ow/none.jsonl'))
    expect(await writer.flushPart()).toBeUndefined()
    await writer.addToShard('s1.bin', Buffer.from('s1'))
    await writer.addToShard('s2.bin', Buffer.from('s2'))
    await writer.addToShard('s3.bin', Buffer.from('s3'))
    expect(writer.stats()).toMatchObject({ partEntries: 3, partsUploaded: 0, shardsCreated: 1, shardEntries: 1 })
    await expectUnchanged(root)
    const result = (await writer.close()) as WrittenManifest
    expect(result.entries).toBe(4)
    expect(result.key).toBe(root.root)
    const entries = await Array.fromAsync(store.iterManifestEntries(root.root, { resolveRefs: false }))
    expect(entries.map((entry) => entry.kind)).toEqual(['file', 'manifest_ref', 'shard', 'shard'])
    expect(entries[0]?.key).toBe('o/1.wav')
    expect(await textOf(root.root)).toBe(entries.map((entry) => `${serializeEntry(entry)}\n`).join(''))
    expect(await Array.fromAsync(store.listKeys(s3.key('ow/manifests/')))).toEqual([])
  })

  it('a new root does not exist until close()', async () => {
    const root = s3.key('ow-new/manifest.jsonl')
    const writer = store.openManifestWriter(root, { mode: 'overwrite' })
    await writer.addFile('o/1.wav')
    expect(await head(root)).toBeUndefined()
    await writer.close()
    expect((await Array.fromAsync(store.iterManifestEntries(root))).map((entry) => entry.key)).toEqual(['o/1.wav'])
  })
})

// ------------------------------------------------------------------ await using

describe('await using', () => {
  it('leaving the scope without close() publishes nothing, aborts the open uploads, and warns', async () => {
    const root = s3.key('dispose/manifest.jsonl')
    const { store: tracked, created } = trackedStore()
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    let writerRef: ManifestWriter | undefined
    let openBefore = 0
    try {
      {
        await using writer = tracked.openManifestWriter(root, { shardSize: { maxEntries: 1000 } })
        writerRef = writer
        await writer.addFile('d/1.wav')
        await writer.flushPart()
        await writer.addFile('d/2.wav')
        // More than two multipart parts of plain tar: the shard's multipart upload is open.
        for (let i = 0; i < 17; i++) await writer.addToShard(`big/${i}.bin`, randomBytes(1024 * 1024))
        openBefore = created.size
      }
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    expect(openBefore).toBe(1)
    expect(writerRef?.isClosed).toBe(true)
    expect(await head(root)).toBeUndefined()
    expect(await openUploads(created, s3.key('dispose/'))).toEqual([])
    expect(await Array.fromAsync(store.listKeys(s3.key('dispose/shards/')))).toEqual([])
    const warning = warnings.find((w) => (w as Error & { code?: string }).code === 'S3X_WRITER_NOT_CLOSED')
    expect(warning?.message).toContain(root)
    expect(warning?.message).toMatch(PART_KEY) // the part that was uploaded is named
  })

  it('an exception in the scope: the exception comes out, nothing is published', async () => {
    const root = await existingRoot('dispose-throw')
    const boom = new Error('user code failed')
    const error = await rejection(
      (async () => {
        await using writer = store.openManifestWriter(root.root, { mode: 'overwrite' })
        await writer.addFile('t/1.wav')
        throw boom
      })(),
    )
    expect(error).toBe(boom)
    await expectUnchanged(root)
  })

  it('overwrite mode with a root bigger than a multipart part: its upload is aborted, the old root stays', async () => {
    const root = await existingRoot('dispose-big')
    const { store: tracked, created } = trackedStore()
    {
      await using writer = tracked.openManifestWriter(root.root, { mode: 'overwrite' })
      const pad = 'p'.repeat(9000)
      for (let i = 0; i < 1100; i++) await writer.addFile(`p/${i}.wav`, { meta: { pad } })
      expect(created.size).toBe(1)
    }
    await expectUnchanged(root)
    expect(await openUploads(created, s3.key('dispose-big/'))).toEqual([])
  })

  it('with publishOnError: leaving the scope publishes what was written, the open shard included', async () => {
    const root = s3.key('dispose-publish/manifest.jsonl')
    const loose = s3.key('dispose-publish/loose.txt')
    {
      await using writer = store.openManifestWriter(root, { shardSize: { maxEntries: 10 }, publishOnError: true })
      await writer.putObject(loose, Buffer.from('loose'))
      await writer.addToShard('m.bin', Buffer.from('member'))
    }
    const entries = await Array.fromAsync(store.iterManifestEntries(root))
    expect(entries.map((entry) => entry.kind)).toEqual(['file', 'shard'])
    expect((await objects(root)).map(([p, bytes]) => [p, bytes.toString()])).toEqual([
      [loose, 'loose'],
      ['m.bin', 'member'],
    ])
  })

  it('after close(), leaving the scope does nothing more', async () => {
    const root = s3.key('dispose-closed/manifest.jsonl')
    {
      await using writer = store.openManifestWriter(root)
      await writer.addFile('c/1.wav')
      await writer.close()
    }
    expect(refsOf(await textOf(root))).toHaveLength(1)
  })
})

// ------------------------------------------------------------------ failures midway

describe('an error midway', () => {
  /** A writer that has put a loose object, completed a shard, uploaded a part, and has a shard open. */
  async function busyWriter(name: string, options: { publishOnError?: boolean } = {}) {
    const root = await existingRoot(name)
    const { store: tracked, created } = trackedStore()
    const writer = tracked.openManifestWriter(root.root, { shardSize: { maxEntries: 2 }, ...options })
    const loose = s3.key(`${name}/loose.txt`)
    await writer.putObject(loose, Buffer.from('loose'))
    await writer.addToShard('s1/a.txt', Buffer.from('a'))
    await writer.addToShard('s1/b.txt', Buffer.from('b'))
    const part = (await writer.flushPart()) as string
    await writer.addFile('after/part.wav')
    await writer.addToShard('s2/c.txt', Buffer.from('c'))
    const [completedShard] = (await Array.fromAsync(store.listKeys(s3.key(`${name}/shards/`)))) as [string]
    return { root, created, writer, loose, part, completedShard }
  }

  it('an invalid member path: PublishError listing the object, the completed shard and the part; root unchanged; the writer is failed', async () => {
    const { root, created, writer, loose, part, completedShard } = await busyWriter('err-path')
    const error = await rejection(writer.addToShard('../escape.txt', Buffer.from('x')))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).key).toBe(root.root)
    expect((error as PublishError).cause).toBeInstanceOf(ShardWriteError)
    expect((error as PublishError).cause).toMatchObject({ memberPath: '../escape.txt' })
    expect([...(error as PublishError).uploadedKeys].sort()).toEqual([loose, completedShard, part].sort())
    await expectUnchanged(root)
    expect(await Array.fromAsync(store.listKeys(s3.key('err-path/shards/')))).toEqual([completedShard]) // the open one is gone
    expect(await openUploads(created, s3.key('err-path/'))).toEqual([])
    expect(writer.isClosed).toBe(true)
    // Every later call rejects with the writer's failure.
    expect(await rejection(writer.addFile('more.wav'))).toBe(error)
    expect(await rejection(writer.close())).toBe(error)
    expect(await rejection(writer.putObject(s3.key('err-path/late.bin'), Buffer.from('late')))).toBe(error)
    expect(await Array.fromAsync(store.listKeys(s3.key('err-path/late')))).toEqual([])
    await expectUnchanged(root)
  })

  it('a member stream that throws with a multipart upload open: PublishError caused by it; the upload aborted', async () => {
    const { root, created, writer, loose, part, completedShard } = await busyWriter('err-stream')
    const boom = new Error('member stream failed')
    let openAtFailure = 0
    async function* failing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 17; i++) yield randomBytes(1024 * 1024)
      openAtFailure = created.size
      throw boom
    }
    const error = await rejection(writer.addToShard('big.bin', failing(), { sizeBytes: 20 * 1024 * 1024 }))
    expect(openAtFailure).toBe(1)
    expect(error).toBeInstanceOf(PublishError)
    const cause = (error as PublishError).cause
    expect(cause === boom || (cause instanceof ShardWriteError && cause.cause === boom), String(cause)).toBe(true)
    expect([...(error as PublishError).uploadedKeys].sort()).toEqual([loose, completedShard, part].sort())
    await expectUnchanged(root)
    expect(await openUploads(created, s3.key('err-stream/'))).toEqual([])
  })

  it('a putObject that fails: PublishError caused by InvalidSourceError', async () => {
    const { root, created, writer } = await busyWriter('err-put')
    const error = await rejection(writer.putObject(s3.key('err-put/missing.bin'), join(dir, 'missing.bin')))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).cause).toBeInstanceOf(InvalidSourceError)
    await expectUnchanged(root)
    expect(await openUploads(created, s3.key('err-put/'))).toEqual([])
  })

  it('an error elsewhere while the root (overwrite) and a shard have multipart uploads open: both are aborted', async () => {
    const root = await existingRoot('err-open')
    const { store: tracked, created } = trackedStore()
    const writer = tracked.openManifestWriter(root.root, { mode: 'overwrite', shardSize: { maxEntries: 100 } })
    const pad = 'q'.repeat(9000)
    for (let i = 0; i < 1100; i++) await writer.addFile(`q/${i}.wav`, { meta: { pad } })
    await writer.addToShard('big.bin', randomBytes(17 * 1024 * 1024))
    const opened = [...created.values()]
    expect(opened).toHaveLength(2)
    expect(opened).toContain(root.root)
    expect(opened.find((key) => key !== root.root)).toMatch(SHARD_KEY)
    const error = await rejection(writer.putObject(s3.key('err-open/missing.bin'), join(dir, 'missing.bin')))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).uploadedKeys).toEqual([])
    await expectUnchanged(root)
    expect(await openUploads(created, s3.key('err-open/'))).toEqual([])
    expect(await Array.fromAsync(store.listKeys(s3.key('err-open/shards/')))).toEqual([])
  })

  it('with publishOnError: the completed parts and shards are published, the open shard is not; the error comes out', async () => {
    const { root, created, writer, loose, completedShard } = await busyWriter('err-publish', { publishOnError: true })
    const error = await rejection(writer.addToShard('/absolute.txt', Buffer.from('x')))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(writer.isClosed).toBe(true)
    const text = await textOf(root.root)
    expect(text.startsWith(root.bytes.toString())).toBe(true)
    const entries = await Array.fromAsync(store.iterManifestEntries(root.root))
    expect(entries.map((entry) => entry.key ?? entry.archive_key)).toEqual(['before/1.wav', loose, completedShard, 'after/part.wav'])
    expect(await Array.fromAsync(store.listKeys(s3.key('err-publish/shards/')))).toEqual([completedShard])
    expect(await openUploads(created, s3.key('err-publish/'))).toEqual([])
  })

  it('abort() publishes nothing and resolves to what was left behind', async () => {
    const { root, created, writer, loose, part, completedShard } = await busyWriter('err-abort')
    const left = await writer.abort()
    expect([...left].sort()).toEqual([loose, completedShard, part].sort())
    expect(writer.isClosed).toBe(true)
    await expectUnchanged(root)
    expect(await openUploads(created, s3.key('err-abort/'))).toEqual([])
  })
})

// ------------------------------------------------------------------ Python reads what it wrote

describe('Python reads what the writer wrote', () => {
  const PY_READ = `
import hashlib, json, sys, tarfile
files = dict(arg.split('=', 1) for arg in sys.argv[2:])
def entries(key, seen):
    out = []
    with open(files[key], 'rb') as f:
        for line in f.read().decode('utf-8').split('\\n'):
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry['kind'] == 'manifest_ref':
                if entry['key'] not in seen:
                    seen.add(entry['key'])
                    out.extend(entries(entry['key'], seen))
            else:
                out.append(entry)
    return out
result = {'entries': entries(sys.argv[1], {sys.argv[1]}), 'shards': {}}
for entry in result['entries']:
    if entry['kind'] != 'shard':
        continue
    with tarfile.open(files[entry['archive_key']]) as tar:
        names, digests, manifest = [], {}, None
        for member in tar:
            names.append(member.name)
            data = tar.extractfile(member).read()
            digests[member.name] = hashlib.sha256(data).hexdigest()
            if member.name == entry.get('internal_manifest_path', '__manifest__.jsonl'):
                manifest = [json.loads(l) for l in data.decode('utf-8').splitlines() if l.strip()]
        result['shards'][entry['archive_key']] = {'names': names, 'digests': digests, 'manifest': manifest}
print(json.dumps(result))
`

  it.each([
    ['plain tar shards', null],
    ['tar.gz shards', 'gzip'],
  ] as const)(
    '%s: every manifest line is JSON, every shard opens with tarfile and its internal manifest parses',
    async (_, shardCompression) => {
      const name = `py-${shardCompression ?? 'plain'}`
      const root = s3.key(`${name}/manifest.jsonl`)
      const writer = store.openManifestWriter(root, { shardSize: { maxEntries: 2 }, shardCompression, partMaxEntries: 2 })
      const loose = await writer.putObject(s3.key(`${name}/loose-é.txt`), Buffer.from('loose'), { meta: { note: 'naïve 🎧' } })
      const members: [string, Buffer][] = [
        ['0001.wav', randomBytes(600)],
        ['données/été.wav', randomBytes(512)],
        [`${'long/'.repeat(25)}name.bin`, randomBytes(1)],
        ['empty.bin', Buffer.alloc(0)],
        ['last.bin', randomBytes(513)],
      ]
      for (const [path, data] of members) await writer.addToShard(path, data, { id: path, meta: { size: data.byteLength } })
      await writer.addFile('elsewhere/x.wav', { sizeBytes: 3 })
      await writer.close()

      const expectedEntries = await Array.fromAsync(store.iterManifestEntries(root))
      const keys = [root, ...refsOf(await textOf(root))]
      for (const entry of expectedEntries) if (entry.kind === 'shard') keys.push(entry.archive_key)
      const args = [root]
      for (const [i, key] of keys.entries()) {
        const path = join(dir, `${name}-${i}`)
        writeFileSync(path, await bytesOf(key))
        args.push(`${key}=${path}`)
      }
      const seen = python(PY_READ, args) as {
        entries: ManifestEntry[]
        shards: Record<string, { names: string[]; digests: Record<string, string>; manifest: FileEntry[] }>
      }
      expect(seen.entries).toStrictEqual(expectedEntries)
      expect(seen.entries[0]).toStrictEqual(loose)
      const shardEntries = expectedEntries.filter((entry): entry is ShardEntry => entry.kind === 'shard')
      expect(shardEntries.map((entry) => entry.count)).toEqual([2, 2, 1])
      const pythonMembers: string[] = []
      for (const entry of shardEntries) {
        const shard = seen.shards[entry.archive_key]
        expect(shard?.names[0]).toBe('__manifest__.jsonl')
        const listed = (shard?.manifest ?? []).map((line) => line.member_path as string)
        expect(shard?.names.slice(1)).toEqual(listed)
        expect(shard?.manifest).toStrictEqual(await Array.fromAsync(store.getShard(entry.archive_key).getManifest()))
        for (const line of shard?.manifest ?? []) {
          expect(line.key).toBe(`${entry.archive_key}#${line.member_path}`)
          pythonMembers.push(line.member_path as string)
        }
        for (const [path, data] of members) if (listed.includes(path)) expect(shard?.digests[path], path).toBe(sha256(data))
      }
      expect(pythonMembers).toEqual(members.map(([path]) => path))
    },
  )
})
