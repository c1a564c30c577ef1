/**
 * The store's write API against a real (local) S3: putObject (bytes, file paths, streams; the
 * entry Python returns, no HEAD), writeManifest (overwrite and append_parts, byte for byte, the
 * seed README flow, concurrent appenders with and without enforced conditional writes), writes
 * that fail midway (root untouched, multipart uploads aborted, typed errors), putShardArchive
 * (gzip and plain, awkward member paths and sizes, read back every way, Python's tarfile), and
 * putSharded.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { countRequests, rejection, requireTool, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CommitResult,
  ConfigurationError,
  type FileEntry,
  InvalidManifestError,
  InvalidSourceError,
  ManifestConflictError,
  type ManifestEntry,
  PublishError,
  rememberServerCapabilities,
  type ShardEntry,
  type ShardItem,
  ShardWriteError,
  serializeEntry,
  type WrittenManifest,
} from './index.js'
import { Shard } from './shard.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
const server = testServer()
let store: S3ExchangeStore
let dir: string
const extraClients: S3Client[] = []

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  dir = mkdtempSync(join(tmpdir(), 's3x-store-write-'))
})

afterAll(() => {
  for (const client of extraClients) client.destroy()
  rmSync(dir, { recursive: true, force: true })
})

// ------------------------------------------------------------------ helpers

async function put(key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentType: contentType }))
}

/** The object's bytes, straight from S3. */
async function bytesOf(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array(0))
}

async function textOf(key: string): Promise<string> {
  return (await bytesOf(key)).toString('utf8')
}

/** HEAD: the unquoted ETag, size and content type, or undefined when missing. */
async function head(key: string): Promise<{ etag: string; size: number; contentType: string | undefined } | undefined> {
  try {
    const response = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    return { etag: (response.ETag ?? '').replace(/"/g, ''), size: response.ContentLength ?? -1, contentType: response.ContentType }
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
    throw error
  }
}

function md5(data: Uint8Array | string): string {
  return createHash('md5').update(data).digest('hex')
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}

function newClient(): S3Client {
  const client = s3.s3.createClient()
  extraClients.push(client)
  return client
}

/**
 * A store whose client records the multipart uploads it creates (through SDK middleware), so a
 * test can ask the server whether any of them is still open.
 */
function trackedStore(): { store: S3ExchangeStore; created: Map<string, string>; client: S3Client } {
  const client = newClient()
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
  return { store: new S3ExchangeStore({ client, bucket: s3.bucket }), created, client }
}

/**
 * The keys of multipart uploads still open: those ListMultipartUploads reports (a real S3; the
 * embedded server does not list them), and those of `created` that the server still accepts a
 * part for (a completed or aborted upload answers NoSuchUpload). Open ones are aborted here.
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

/** Runs python3 (stdlib only) with `script` and the arguments; returns its stdout parsed as JSON. */
function python(script: string, args: string[]): unknown {
  const run = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`python3 failed (${run.status}): ${run.stderr}`)
  return JSON.parse(run.stdout)
}

/** Python's view of a shard archive: member names in order, the internal manifest parsed, sha256 of each member. */
const PY_READ_SHARD = `
import hashlib, json, sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    names, digests, manifest = [], {}, None
    for member in tar:
        names.append(member.name)
        data = tar.extractfile(member).read()
        digests[member.name] = hashlib.sha256(data).hexdigest()
        if member.name == sys.argv[2]:
            manifest = [json.loads(line) for line in data.decode('utf-8').splitlines() if line.strip()]
print(json.dumps({'names': names, 'manifest': manifest, 'digests': digests}))
`

async function download(key: string, name: string): Promise<string> {
  const path = join(dir, name)
  writeFileSync(path, await bytesOf(key))
  return path
}

const PART_KEY = /^(.*\/)?manifests\/part-(\d{8})-(\d{6})-([0-9a-f]{8})\.jsonl$/

function refsOf(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ManifestEntry)
    .filter((entry) => entry.kind === 'manifest_ref')
    .map((entry) => entry.key as string)
}

function fileEntry(key: string, extra: Partial<FileEntry> = {}): FileEntry {
  return { kind: 'file', key, ...extra }
}

it('(the helper) openUploads finds a multipart upload left open, and not one that was completed or aborted', async () => {
  const { client, created } = trackedStore()
  const key = s3.key('helper/left-open.bin')
  await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }))
  expect(await openUploads(created, s3.key('helper/'))).toEqual([key])
  expect(await openUploads(created, s3.key('helper/'))).toEqual([]) // it aborted it
})

// ------------------------------------------------------------------ putObject

describe('putObject', () => {
  const ENTRY_FIELDS = ['kind', 'key', 'id', 'meta', 'content_type', 'size_bytes', 'etag', 'sha256']

  it("bytes, as in the seed README: Python's FileEntry fields in order, then sha256; the ETag is HeadObject's; no HEAD sent", async () => {
    const client = newClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const key = s3.key('put/training/123/samples/file.wav')
    const data = randomBytes(3000)
    const entry = await counted.putObject(key, data, { id: 'file-001', meta: { sr: 16000, length: 15342 }, contentType: 'audio/wav' })
    const stored = await head(key)
    expect(entry).toStrictEqual({
      kind: 'file',
      key,
      id: 'file-001',
      meta: { sr: 16000, length: 15342 },
      content_type: 'audio/wav',
      size_bytes: 3000,
      etag: stored?.etag,
      sha256: sha256(data),
    })
    expect(Object.keys(entry)).toEqual(ENTRY_FIELDS)
    expect(serializeEntry(entry)).toBe(
      `{"kind":"file","key":"${key}","id":"file-001","meta":{"sr":16000,"length":15342},"content_type":"audio/wav","size_bytes":3000,"etag":"${md5(data)}","sha256":"${sha256(data)}"}`,
    )
    expect(stored).toEqual({ etag: md5(data), size: 3000, contentType: 'audio/wav' })
    expect((await bytesOf(key)).equals(data)).toBe(true)
    expect(counts.HeadObjectCommand).toBeUndefined()
    expect(counts.PutObjectCommand).toBe(1)
  })

  it('what is not given is null, and the id is inferred from the key by the store inferId', async () => {
    const key = s3.key('put/plain/clip-007.v2.wav')
    const entry = await store.putObject(key, Buffer.from('abc'))
    expect(entry).toStrictEqual({
      kind: 'file',
      key,
      id: 'clip-007.v2',
      meta: null,
      content_type: null,
      size_bytes: 3,
      etag: md5('abc'),
      sha256: sha256('abc'),
    })
    expect(Object.keys(entry)).toEqual(ENTRY_FIELDS)
    expect(serializeEntry(entry)).toBe(
      `{"kind":"file","key":"${key}","id":"clip-007.v2","meta":null,"content_type":null,"size_bytes":3,"etag":"${md5('abc')}","sha256":"${sha256('abc')}"}`,
    )

    const custom = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, inferId: (k) => `custom:${k.length}` })
    const other = await custom.putObject(s3.key('put/plain/x.bin'), new Uint8Array([1]), { id: null })
    expect(other.id).toBe(`custom:${s3.key('put/plain/x.bin').length}`)
    const given = await custom.putObject(s3.key('put/plain/y.bin'), new Uint8Array([1]), { id: 'mine' })
    expect(given.id).toBe('mine')
  })

  it('empty bytes: an empty object, size 0', async () => {
    const key = s3.key('put/empty.bin')
    const entry = await store.putObject(key, new Uint8Array(0))
    expect(entry.size_bytes).toBe(0)
    expect(entry.etag).toBe(md5(''))
    expect(await head(key)).toMatchObject({ size: 0, etag: md5('') })
  })

  it('a local file path, as in the seed README', async () => {
    const path = join(dir, 'file.wav')
    const data = randomBytes(70_000)
    writeFileSync(path, data)
    const key = s3.key('put/from-path.wav')
    const client = newClient()
    const counts = countRequests(client)
    const entry = await new S3ExchangeStore({ client, bucket: s3.bucket }).putObject(key, path, { id: 'file-001' })
    expect(entry).toStrictEqual({
      kind: 'file',
      key,
      id: 'file-001',
      meta: null,
      content_type: null,
      size_bytes: 70_000,
      etag: md5(data),
      sha256: sha256(data),
    })
    expect((await bytesOf(key)).equals(data)).toBe(true)
    expect(counts.HeadObjectCommand).toBeUndefined()
  })

  it('a file larger than a part goes up as a multipart upload; size and ETag still match HeadObject; a HEAD only where the completion answers no ETag', async () => {
    const path = join(dir, 'big.bin')
    const data = randomBytes(9 * 1024 * 1024 + 123)
    writeFileSync(path, data)
    const key = s3.key('put/big.bin')
    const client = newClient()
    const counts = countRequests(client)
    const entry = await new S3ExchangeStore({ client, bucket: s3.bucket }).putObject(key, path, { contentType: 'application/octet-stream' })
    const stored = await head(key)
    expect(counts.CreateMultipartUploadCommand).toBe(1)
    expect(counts.CompleteMultipartUploadCommand).toBe(1)
    // Relies on the server: one HEAD where the completion answers no ETag (Ceph RGW 16), none where it does.
    expect(counts.HeadObjectCommand ?? 0).toBe(server.supports('an ETag in the CompleteMultipartUpload answer') ? 0 : 1)
    expect(entry.size_bytes).toBe(data.byteLength)
    expect(entry.etag).toBe(stored?.etag)
    expect(entry.etag).toMatch(/-2$/)
    expect(entry.sha256).toBe(sha256(data))
    expect(stored?.contentType).toBe('application/octet-stream')
    expect(sha256(await bytesOf(key))).toBe(sha256(data))
  })

  it('a Readable', async () => {
    const key = s3.key('put/readable.txt')
    const entry = await store.putObject(key, Readable.from([Buffer.from('hello '), Buffer.from('wörld')]), {
      contentType: 'text/plain; charset=utf-8',
      meta: { lang: 'de' },
    })
    const stored = await head(key)
    expect(entry).toStrictEqual({
      kind: 'file',
      key,
      id: 'readable',
      meta: { lang: 'de' },
      content_type: 'text/plain; charset=utf-8',
      size_bytes: Buffer.byteLength('hello wörld'),
      etag: stored?.etag,
      sha256: sha256('hello wörld'),
    })
    expect(Object.keys(entry)).toEqual(ENTRY_FIELDS)
    expect(stored?.contentType).toBe('text/plain; charset=utf-8')
    expect(await textOf(key)).toBe('hello wörld')
  })

  it('an async iterable of bytes, and a plain array of chunks', async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 5; i++) yield new Uint8Array(1000).fill(i)
    }
    const key = s3.key('put/async.bin')
    const entry = await store.putObject(key, chunks())
    const expected = Buffer.concat(Array.from({ length: 5 }, (_, i) => Buffer.alloc(1000, i)))
    expect(entry.size_bytes).toBe(5000)
    expect(entry.etag).toBe((await head(key))?.etag)
    expect((await bytesOf(key)).equals(expected)).toBe(true)

    const arrayKey = s3.key('put/array.bin')
    const fromArray = await store.putObject(arrayKey, [Buffer.from('ab'), Buffer.from('cd')])
    expect(fromArray.size_bytes).toBe(4)
    expect(await textOf(arrayKey)).toBe('abcd')
  })

  it('a missing file path is InvalidSourceError naming the key; nothing is written', async () => {
    const key = s3.key('put/missing.wav')
    const error = await rejection(store.putObject(key, join(dir, 'no-such-file.wav')))
    expect(error).toBeInstanceOf(InvalidSourceError)
    expect((error as InvalidSourceError).key).toBe(key)
    expect((error as Error).message).toContain('no-such-file.wav')
    expect(await head(key)).toBeUndefined()

    const directory = await rejection(store.putObject(key, dir))
    expect(directory).toBeInstanceOf(InvalidSourceError)
    expect((directory as InvalidSourceError).key).toBe(key)
  })

  it('a stream that fails after more than a part: the error comes out, nothing under the key, the multipart upload aborted', async () => {
    const { store: tracked, created } = trackedStore()
    const key = s3.key('put/fails-midway.bin')
    const boom = new Error('source failed')
    async function* failing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10; i++) yield randomBytes(1024 * 1024)
      throw boom
    }
    const error = await rejection(tracked.putObject(key, failing()))
    expect(error).toBe(boom)
    expect([...created.values()]).toEqual([key])
    expect(await openUploads(created, s3.key('put/'))).toEqual([])
    expect(await head(key)).toBeUndefined()
  })
})

// ------------------------------------------------------------------ writeManifest: overwrite

describe('writeManifest overwrite', () => {
  const tricky: ManifestEntry[] = [
    { kind: 'file', key: 'data/ü/clip 1.wav', id: 'ü-1', meta: { text: '日本語 🎧', quote: 'a "b" \\ c\n', n: -3, ok: true, none: null } },
    {
      kind: 'file',
      key: 'data/plain.wav',
      id: null,
      meta: null,
      content_type: null,
      size_bytes: 12,
      etag: null,
      custom_field: { x: [1, 2] },
    },
    {
      kind: 'shard',
      archive_key: 'data/shards/s.tar',
      format: 'tar',
      compression: null,
      internal_manifest_path: '__manifest__.jsonl',
      count: 2,
      size_bytes: 10240,
      meta: { etag: 'abc' },
      extra: 'kept',
    },
    { kind: 'manifest_ref', key: 'data/manifests/other.jsonl', note: 'unknown field' },
  ]

  it('writes Python bytes (non-ASCII escaped, unknown fields kept) that read back identically', async () => {
    const key = s3.key('ow/manifest.jsonl')
    const result = (await store.writeManifest(key, tricky, { mode: 'overwrite' })) as WrittenManifest
    const text = await textOf(key)
    expect(text).toBe(`${tricky.map((entry) => serializeEntry(entry)).join('\n')}\n`)
    expect(text).toContain('"key":"data/\\u00fc/clip 1.wav"')
    expect(text).toContain('"text":"\\u65e5\\u672c\\u8a9e \\ud83c\\udfa7"')
    expect(/^[\x20-\x7e\n]*$/.test(text)).toBe(true)
    expect(await Array.fromAsync(store.iterManifestEntries(key, { resolveRefs: false }))).toStrictEqual(tricky)
    const stored = await head(key)
    expect(stored?.contentType).toBe('application/x-ndjson')
    expect(result).toMatchObject({ key, etag: stored?.etag, size: Buffer.byteLength(text), entries: tricky.length })
  })

  it('is the default mode, replaces what was there, and takes an async iterable', async () => {
    const key = s3.key('ow/replace.jsonl')
    await store.writeManifest(key, tricky)
    async function* entries(): AsyncGenerator<ManifestEntry> {
      yield fileEntry('only/one.wav', { id: 'one' })
    }
    await store.writeManifest(key, entries())
    expect(await textOf(key)).toBe('{"kind":"file","key":"only/one.wav","id":"one"}\n')
    expect(await Array.fromAsync(store.iterManifestEntries(key))).toStrictEqual([fileEntry('only/one.wav', { id: 'one' })])
  })

  it('no entries give exactly "\\n" (as Python writes), which reads back as no entries', async () => {
    const key = s3.key('ow/empty.jsonl')
    await store.writeManifest(key, tricky)
    const result = (await store.writeManifest(key, [])) as WrittenManifest
    expect(await textOf(key)).toBe('\n')
    expect(result.entries).toBe(0)
    expect(await Array.fromAsync(store.iterManifestEntries(key))).toEqual([])
  })

  // The write path validates entries as the reader does: a manifest our own reader would refuse is
  // never written; the error names the manifest.
  it('refuses an entry its own reader would reject (no key, unknown kind) before writing anything', async () => {
    const key = s3.key('ow/invalid-entry.jsonl')
    for (const bad of [{ kind: 'file' }, { kind: 'nope', key: 'x' }, { kind: 'shard' }] as unknown as ManifestEntry[]) {
      const error = await rejection(store.writeManifest(key, [fileEntry('ok.wav'), bad]))
      expect(error).toBeInstanceOf(InvalidManifestError)
    }
    expect(await head(key)).toBeUndefined()
  })

  it('an unknown mode is ConfigurationError and writes nothing', async () => {
    const key = s3.key('ow/bad-mode.jsonl')
    const error = await rejection(store.writeManifest(key, tricky, { mode: 'append' as never }))
    expect(error).toBeInstanceOf(ConfigurationError)
    expect(await head(key)).toBeUndefined()
  })
})

// ------------------------------------------------------------------ writeManifest: append_parts

describe('writeManifest append_parts', () => {
  it('creates the root when absent: one ref to a part named as Python names it, beside the root', async () => {
    const root = s3.key('ap/new/manifest.jsonl')
    const entries = [fileEntry('a/1.wav', { id: '1' }), fileEntry('a/2.wav', { id: '2', meta: { ü: 1 } })]
    const before = Math.floor(Date.now() / 1000) * 1000
    const result = (await store.writeManifest(root, entries, { mode: 'append_parts' })) as CommitResult
    const after = Date.now()

    expect(result.root).toBe(root)
    expect(result.entries).toBe(2)
    expect(result.parts).toHaveLength(1)
    const part = result.parts[0] as string
    const match = PART_KEY.exec(part)
    expect(match, part).not.toBeNull()
    expect(match?.[1]).toBe(s3.key('ap/new/'))
    const [, , day, time] = match as unknown as [string, string, string, string]
    const stamp = Date.UTC(
      +day.slice(0, 4),
      +day.slice(4, 6) - 1,
      +day.slice(6, 8),
      +time.slice(0, 2),
      +time.slice(2, 4),
      +time.slice(4, 6),
    )
    expect(stamp).toBeGreaterThanOrEqual(before)
    expect(stamp).toBeLessThanOrEqual(after)

    expect(await textOf(root)).toBe(`{"kind":"manifest_ref","key":"${part}"}\n`)
    expect(await textOf(part)).toBe(`${entries.map((entry) => serializeEntry(entry)).join('\n')}\n`)
    expect((await head(part))?.contentType).toBe('application/x-ndjson')
    expect(result.rootEtag).toBe((await head(root))?.etag)
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual(entries)
  })

  it('keeps the existing root lines byte for byte and adds exactly one ref per call', async () => {
    const root = s3.key('ap/existing/manifest.jsonl')
    // Written by someone else: spaces, raw UTF-8, an unknown field, CRLF, a blank line.
    const original = '{"kind": "file", "key": "x/ü.wav", "extra": {"a": 1}}\r\n\n{"kind":"file","key":"x/2.wav"}\n'
    await put(root, original, 'application/x-ndjson')
    const parts: string[] = []
    for (let i = 0; i < 3; i++) {
      const result = (await store.writeManifest(root, [fileEntry(`y/${i}.wav`)], { mode: 'append_parts' })) as CommitResult
      expect(result.parts).toHaveLength(1)
      parts.push(result.parts[0] as string)
      const text = await textOf(root)
      expect(text).toBe(original + parts.map((key) => `{"kind":"manifest_ref","key":"${key}"}\n`).join(''))
    }
    expect(new Set(parts).size).toBe(3)
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual([
      { kind: 'file', key: 'x/ü.wav', extra: { a: 1 } },
      fileEntry('x/2.wav'),
      fileEntry('y/0.wav'),
      fileEntry('y/1.wav'),
      fileEntry('y/2.wav'),
    ])
  })

  it('a root without a final newline gets one before the new ref', async () => {
    const root = s3.key('ap/no-newline/manifest.jsonl')
    await put(root, '{"kind":"file","key":"k/1.wav"}')
    const { parts } = (await store.writeManifest(root, [fileEntry('k/2.wav')], { mode: 'append_parts' })) as CommitResult
    expect(await textOf(root)).toBe(`{"kind":"file","key":"k/1.wav"}\n{"kind":"manifest_ref","key":"${parts[0]}"}\n`)
  })

  it('partMaxEntries splits the entries into several parts, all published in one root write, in order', async () => {
    const root = s3.key('ap/split/manifest.jsonl')
    const client = newClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const entries = Array.from({ length: 5 }, (_, i) => fileEntry(`s/${i}.wav`, { id: String(i) }))
    const result = (await counted.writeManifest(root, entries, { mode: 'append_parts', partMaxEntries: 2 })) as CommitResult
    expect(result.parts).toHaveLength(3)
    expect(result.entries).toBe(5)
    expect(refsOf(await textOf(root))).toEqual(result.parts)
    expect((await textOf(result.parts[2] as string)).trim()).toBe(serializeEntry(entries[4] as FileEntry))
    expect(counts.PutObjectCommand).toBe(4) // three parts and the root, once
    expect(await Array.fromAsync(counted.iterManifestEntries(root))).toStrictEqual(entries)
  })

  it('no entries: no part, and the root is neither created nor touched', async () => {
    const root = s3.key('ap/nothing/manifest.jsonl')
    const result = (await store.writeManifest(root, [], { mode: 'append_parts' })) as CommitResult
    expect(result).toEqual({ root, parts: [], entries: 0, rootEtag: undefined })
    expect(await head(root)).toBeUndefined()
  })

  it('the seed README flow: overwrite, then append_parts, reads back as the union, in order', async () => {
    const root = s3.key('ap/readme/training/123/samples/manifest.jsonl')
    const first = [
      { kind: 'file', key: 'training/123/samples/file1.wav', id: '001' },
      { kind: 'file', key: 'training/123/samples/file2.wav', id: '002' },
    ] satisfies ManifestEntry[]
    const second = [{ kind: 'file', key: 'training/123/samples/file3.wav', id: '003' }] satisfies ManifestEntry[]
    await store.writeManifest(root, first, { mode: 'overwrite' })
    const { parts } = (await store.writeManifest(root, second, { mode: 'append_parts' })) as CommitResult
    expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual([...first, ...second])
    expect(await Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false }))).toStrictEqual([
      ...first,
      { kind: 'manifest_ref', key: parts[0] },
    ])
    expect(parts[0]?.startsWith(s3.key('ap/readme/training/123/samples/manifests/part-'))).toBe(true)
  })

  it('a root that is not a valid manifest is left alone: PublishError caused by InvalidManifestError, the part listed', async () => {
    const root = s3.key('ap/corrupt/manifest.jsonl')
    await put(root, '{"kind":"file","key":"ok.wav"}\nnot json\n')
    const before = await head(root)
    const error = await rejection(store.writeManifest(root, [fileEntry('new.wav')], { mode: 'append_parts' }))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).key).toBe(root)
    expect((error as PublishError).cause).toBeInstanceOf(InvalidManifestError)
    expect((error as PublishError).cause).toMatchObject({ key: root, lineNumber: 2 })
    const [part] = (error as PublishError).uploadedKeys
    expect(part).toMatch(PART_KEY)
    expect(await textOf(part as string)).toBe('{"kind":"file","key":"new.wav"}\n')
    expect(await head(root)).toEqual(before)
  })
})

describe('a root update that keeps losing the race', () => {
  it('PublishError caused by ManifestConflictError, listing the part; the root unchanged', async () => {
    const root = s3.key('conflict/manifest.jsonl')
    await store.writeManifest(root, [fileEntry('c/0.wav')])
    const before = await bytesOf(root)
    const rootPath = `/${s3.bucket}/${root}`
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
      const error = await rejection(racing.writeManifest(root, [fileEntry('c/1.wav')], { mode: 'append_parts', maxAttempts: 3 }))
      expect(error).toBeInstanceOf(PublishError)
      expect((error as PublishError).cause).toBeInstanceOf(ManifestConflictError)
      expect((error as PublishError).cause).toMatchObject({ key: root, attempts: 3 })
      const [part] = (error as PublishError).uploadedKeys
      expect(part).toMatch(PART_KEY)
      expect(await textOf(part as string)).toBe('{"kind":"file","key":"c/1.wav"}\n')
      expect(proxy.requests.filter((request) => request.method === 'PUT' && request.url.split('?')[0] === rootPath)).toHaveLength(3)
      expect((await bytesOf(root)).equals(before)).toBe(true)
    } finally {
      client.destroy()
      await proxy.stop()
    }
  })
})

describe('concurrent append_parts on one root', () => {
  const WRITERS = 8
  const APPENDS = 10

  /** WRITERS writers, each appending APPENDS single-entry parts to `root`, all at once. */
  async function race(writer: S3ExchangeStore, root: string): Promise<string[]> {
    const results = await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const parts: string[] = []
        for (let i = 0; i < APPENDS; i++) {
          const result = (await writer.writeManifest(root, [fileEntry(`w${w}/${i}.wav`, { id: `${w}-${i}` })], {
            mode: 'append_parts',
            maxAttempts: 200,
          })) as CommitResult
          parts.push(...result.parts)
        }
        return parts
      }),
    )
    return results.flat()
  }

  it('with conditional writes enforced (as on AWS S3): every one of the 80 parts is referenced exactly once', async () => {
    const proxy = await startS3Proxy({ target: s3.s3, enforceConditionalWrites: true })
    const client = s3.s3.createClient({ endpoint: proxy.endpoint })
    try {
      const root = s3.key('race/enforced/manifest.jsonl')
      const parts = await race(new S3ExchangeStore({ client, bucket: s3.bucket }), root)
      expect(parts).toHaveLength(WRITERS * APPENDS)
      const refs = refsOf(await textOf(root))
      expect(refs).toHaveLength(WRITERS * APPENDS)
      expect(new Set(refs).size).toBe(WRITERS * APPENDS)
      expect([...refs].sort()).toEqual([...parts].sort())
      expect(proxy.conflicts).toBeGreaterThan(0)

      const read = await Array.fromAsync(store.iterManifestEntries(root))
      const expected = Array.from({ length: WRITERS }, (_, w) => Array.from({ length: APPENDS }, (_, i) => `w${w}/${i}.wav`)).flat()
      expect(read.map((entry) => entry.key).sort()).toEqual(expected.sort())
      // Each writer's own appends land in the order it made them.
      for (let w = 0; w < WRITERS; w++) {
        const own = read.filter((entry) => (entry.key as string).startsWith(`w${w}/`)).map((entry) => entry.key)
        expect(own).toEqual(Array.from({ length: APPENDS }, (_, i) => `w${w}/${i}.wav`))
      }
    } finally {
      client.destroy()
      await proxy.stop()
    }
  })

  it.skipIf(!server.supports('conditional PutObject'))(
    'without the proxy, the server enforcing the conditions itself: every one of the 80 parts is referenced exactly once (needs conditional PutObject)',
    async () => {
      const root = s3.key('race/server/manifest.jsonl')
      const parts = await race(store, root)
      expect(parts).toHaveLength(WRITERS * APPENDS)
      const refs = refsOf(await textOf(root))
      expect(refs).toHaveLength(WRITERS * APPENDS)
      expect([...refs].sort()).toEqual([...parts].sort())
      const read = await Array.fromAsync(store.iterManifestEntries(root))
      for (let w = 0; w < WRITERS; w++) {
        const own = read.filter((entry) => (entry.key as string).startsWith(`w${w}/`)).map((entry) => entry.key)
        expect(own).toEqual(Array.from({ length: APPENDS }, (_, i) => `w${w}/${i}.wav`))
      }
    },
  )

  it.skipIf(!server.supports('conditional writes ignored'))(
    'without the proxy, on a server that ignores If-Match: like Python, refs may be lost, but nothing fails and the root stays valid (needs conditional writes ignored)',
    async () => {
      const root = s3.key('race/unenforced/manifest.jsonl')
      const parts = await race(store, root)
      expect(parts).toHaveLength(WRITERS * APPENDS)
      const refs = refsOf(await textOf(root))
      expect(refs.length).toBeGreaterThan(0)
      expect(refs.length).toBeLessThanOrEqual(WRITERS * APPENDS)
      expect(new Set(refs).size).toBe(refs.length)
      for (const ref of refs) expect(parts).toContain(ref)
      // Every part itself was written, referenced or not.
      for (const part of parts.slice(0, 5)) expect(await head(part)).toBeDefined()
      expect((await Array.fromAsync(store.iterManifestEntries(root))).length).toBe(refs.length)
    },
  )
})

// ------------------------------------------------------------------ failures midway

describe('a source that fails midway (Done when)', () => {
  /** A root with some content, and what it looks like now. */
  async function existingRoot(name: string): Promise<{ root: string; etag: string; bytes: Buffer }> {
    const root = s3.key(`fail/${name}/manifest.jsonl`)
    await store.writeManifest(root, [fileEntry('before/1.wav', { id: 'b1' }), fileEntry('before/2.wav')])
    await store.writeManifest(root, [fileEntry('before/3.wav')], { mode: 'append_parts' })
    return { root, etag: (await head(root))?.etag as string, bytes: await bytesOf(root) }
  }

  async function expectRootUnchanged(root: { root: string; etag: string; bytes: Buffer }): Promise<void> {
    expect((await head(root.root))?.etag).toBe(root.etag)
    expect((await bytesOf(root.root)).equals(root.bytes)).toBe(true)
  }

  it('writeManifest append_parts: PublishError listing the uploaded parts, caused by the error; root unchanged; no part left open', async () => {
    const root = await existingRoot('append')
    const { store: tracked, created } = trackedStore()
    const boom = new Error('entry source failed')
    async function* entries(): AsyncGenerator<ManifestEntry> {
      for (let i = 0; i < 5; i++) yield fileEntry(`new/${i}.wav`)
      throw boom
    }
    const error = await rejection(tracked.writeManifest(root.root, entries(), { mode: 'append_parts', partMaxEntries: 2 }))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).key).toBe(root.root)
    expect((error as PublishError).cause).toBe(boom)
    const uploaded = (error as PublishError).uploadedKeys
    expect(uploaded).toHaveLength(2) // two full parts; the fifth entry's part was never written
    for (const [i, part] of uploaded.entries()) {
      expect(part).toMatch(PART_KEY)
      expect(await textOf(part)).toBe(
        `${serializeEntry(fileEntry(`new/${2 * i}.wav`))}\n${serializeEntry(fileEntry(`new/${2 * i + 1}.wav`))}\n`,
      )
    }
    const partsNow = await Array.fromAsync(store.listKeys(s3.key('fail/append/manifests/')))
    expect(partsNow.filter((key) => !refsOf(root.bytes.toString()).includes(key)).sort()).toEqual([...uploaded].sort())
    await expectRootUnchanged(root)
    expect(await openUploads(created, s3.key('fail/append/'))).toEqual([])
  })

  it('writeManifest append_parts with a part larger than a multipart part: the open upload is aborted', async () => {
    const root = await existingRoot('append-big')
    const { store: tracked, created } = trackedStore()
    const boom = new Error('entry source failed late')
    let openAtFailure = 0
    async function* entries(): AsyncGenerator<ManifestEntry> {
      const pad = 'x'.repeat(9000)
      for (let i = 0; i < 1100; i++) yield fileEntry(`big/${i}.wav`, { meta: { pad } }) // ~9.9 MB of JSONL
      openAtFailure = created.size
      throw boom
    }
    const error = await rejection(tracked.writeManifest(root.root, entries(), { mode: 'append_parts' }))
    expect(openAtFailure).toBe(1)
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).cause).toBe(boom)
    expect((error as PublishError).uploadedKeys).toEqual([])
    await expectRootUnchanged(root)
    expect(await openUploads(created, s3.key('fail/append-big/'))).toEqual([])
    expect(await Array.fromAsync(store.listKeys(s3.key('fail/append-big/manifests/')))).toHaveLength(1) // the earlier part only
  })

  it('writeManifest overwrite: the error itself, the old root intact, the multipart upload aborted', async () => {
    const root = await existingRoot('overwrite-big')
    const { store: tracked, created } = trackedStore()
    const boom = new Error('overwrite source failed')
    async function* entries(): AsyncGenerator<ManifestEntry> {
      const pad = 'y'.repeat(9000)
      for (let i = 0; i < 1100; i++) yield fileEntry(`big/${i}.wav`, { meta: { pad } })
      throw boom
    }
    const error = await rejection(tracked.writeManifest(root.root, entries()))
    expect(error).toBe(boom)
    expect(created.size).toBe(1)
    await expectRootUnchanged(root)
    expect(await openUploads(created, s3.key('fail/overwrite-big/'))).toEqual([])
  })

  it.each([
    ['a member stream', 'gzip'],
    ['the item stream', null],
  ] as const)(
    'putShardArchive, %s throwing after > 16 MiB (a multipart upload open): the error, nothing under the key, the upload aborted',
    async (what, compression) => {
      const { store: tracked, created } = trackedStore()
      const archiveKey = s3.key(`fail/shard-${compression ?? 'plain'}/shard.tar${compression ? '.gz' : ''}`)
      const boom = new Error(`${what} failed`)
      let openAtFailure: string[] = []
      const failNow = () => {
        openAtFailure = [...created.values()]
        throw boom
      }
      async function* memberData(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 17; i++) yield randomBytes(1024 * 1024)
        failNow()
      }
      async function* items(): AsyncGenerator<ShardItem> {
        yield { source: Buffer.from('small first member'), member_path: 'a.txt', id: 'a' }
        if (what === 'a member stream') {
          yield { source: memberData(), member_path: 'b.bin', size_bytes: 20 * 1024 * 1024 }
        } else {
          for (let i = 0; i < 17; i++) yield { source: randomBytes(1024 * 1024), member_path: `m/${i}.bin` }
          failNow()
        }
      }
      const error = await rejection(tracked.putShardArchive(archiveKey, items(), { compression }))
      const typed = error === boom || ((error instanceof ShardWriteError || error instanceof InvalidSourceError) && error.cause === boom)
      expect(typed, String(error)).toBe(true)
      if (error instanceof ShardWriteError) expect(error.archiveKey).toBe(archiveKey)
      expect(openAtFailure).toEqual([archiveKey])
      expect(await head(archiveKey)).toBeUndefined()
      expect(await openUploads(created, s3.key('fail/'))).toEqual([])
    },
  )

  it('putSharded fed by putShardArchive calls, the second failing midway: PublishError, root unchanged, no upload left open', async () => {
    const root = await existingRoot('sharded')
    const { store: tracked, created } = trackedStore()
    const boom = new Error('member source failed')
    async function* bigMember(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 17; i++) yield randomBytes(1024 * 1024)
      throw boom
    }
    const firstKey = s3.key('fail/sharded/shards/shard-00000.tar')
    const secondKey = s3.key('fail/sharded/shards/shard-00001.tar')
    async function* shardEntries(): AsyncGenerator<ShardEntry> {
      yield (await tracked.putShardArchive(firstKey, [{ source: Buffer.from('one'), member_path: 'one.txt' }], { compression: null })).entry
      yield (
        await tracked.putShardArchive(secondKey, [{ source: bigMember(), member_path: 'two.bin', size_bytes: 18 * 1024 * 1024 }], {
          compression: null,
        })
      ).entry
    }
    const error = await rejection(tracked.putSharded(root.root, shardEntries()))
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).key).toBe(root.root)
    const cause = (error as PublishError).cause
    expect(cause === boom || (cause instanceof ShardWriteError && cause.cause === boom), String(cause)).toBe(true)
    expect((error as PublishError).uploadedKeys).toEqual([]) // the part holding the first shard's entry was never written
    await expectRootUnchanged(root)
    expect(await head(firstKey)).toBeDefined() // complete, but referenced by nothing
    expect(await head(secondKey)).toBeUndefined()
    expect([...created.values()]).toEqual([secondKey])
    expect(await openUploads(created, s3.key('fail/sharded/'))).toEqual([])
  })
})

// ------------------------------------------------------------------ putShardArchive

/** A .tar.zst decompressed by the zstd tool (node:zlib alone stops after the first frame). */
function unzstd(archive: Uint8Array): Buffer {
  requireTool('zstd', { install: 'apt-get install zstd' })
  return execFileSync('zstd', ['-d', '-c', '-q'], { input: archive })
}

describe('putShardArchive', () => {
  const SHARD_FIELDS = ['kind', 'archive_key', 'format', 'compression', 'internal_manifest_path', 'count', 'size_bytes', 'meta']
  const longPath = `${'deep/'.repeat(22)}a-very-long-member-name.bin` // > 100 bytes: a pax header
  let filePath: string

  interface Expected {
    path: string
    data: Buffer
    id: string | null
    meta: Record<string, unknown> | null
  }
  let expected: Expected[]

  beforeAll(() => {
    filePath = join(dir, 'member-from-file.wav')
    const fromFile = randomBytes(2048)
    writeFileSync(filePath, fromFile)
    expected = [
      { path: '0001.wav', data: randomBytes(1000), id: '0001', meta: { sr: 16000 } },
      { path: 'données/été-🎧.wav', data: Buffer.from('non-ASCII member path'), id: 'été', meta: { lang: 'fr' } },
      { path: longPath, data: randomBytes(300), id: null, meta: null },
      { path: 'empty.txt', data: Buffer.alloc(0), id: 'empty', meta: null },
      { path: 'b511.bin', data: randomBytes(511), id: null, meta: null },
      { path: 'b512.bin', data: randomBytes(512), id: null, meta: null },
      { path: 'b513.bin', data: randomBytes(513), id: null, meta: null },
      { path: 'from/file.wav', data: fromFile, id: 'f', meta: null },
      { path: 'from/readable.bin', data: randomBytes(5000), id: 'r', meta: { src: 'readable' } },
      { path: 'from/async.bin', data: randomBytes(3000), id: 'g', meta: null },
    ]
  })

  /** The items for `expected`, with every kind of source. */
  function items(): ShardItem[] {
    return expected.map(({ path, data, id, meta }): ShardItem => {
      const base = { member_path: path, id, meta: meta as ShardItem['meta'] }
      if (path === 'from/file.wav') return { ...base, source: filePath }
      if (path === 'from/readable.bin')
        return { ...base, source: Readable.from([data.subarray(0, 100), data.subarray(100)]), size_bytes: data.byteLength }
      if (path === 'from/async.bin') {
        return {
          ...base,
          source: (async function* () {
            yield data.subarray(0, 1)
            yield data.subarray(1)
          })(),
        }
      }
      return { ...base, source: data }
    })
  }

  describe.each([
    ['gzip (the default)', undefined, 'gzip', '.tar.gz'],
    ['plain tar', null, null, '.tar'],
    ['zstd (the default for a .tar.zst key)', undefined, 'zstd', '.tar.zst'],
  ] as const)('%s', (_, option, compression, extension) => {
    let archiveKey: string
    let shard: Shard

    beforeAll(async () => {
      archiveKey = s3.key(`shards/put/shard-00000${extension}`)
      shard = await store.putShardArchive(archiveKey, items(), option === undefined ? {} : { compression: option })
    })

    it("returns a Shard whose entry is Python's ShardEntry, field for field and in order", async () => {
      expect(shard).toBeInstanceOf(Shard)
      expect(shard.store).toBe(store)
      const stored = await head(archiveKey)
      expect(shard.entry).toStrictEqual({
        kind: 'shard',
        archive_key: archiveKey,
        format: 'tar',
        compression,
        internal_manifest_path: '__manifest__.jsonl',
        count: expected.length,
        size_bytes: stored?.size,
        meta: { etag: stored?.etag },
      })
      expect(Object.keys(shard.entry)).toEqual(SHARD_FIELDS)
      const magic = (await bytesOf(archiveKey)).subarray(0, 2)
      expect(magic.equals(Buffer.from([0x1f, 0x8b]))).toBe(compression === 'gzip')
      expect(magic.equals(Buffer.from([0x28, 0xb5]))).toBe(compression === 'zstd')
    })

    it('iterObjects() gives every member, in order, with its entry and its bytes', async () => {
      const got = []
      for await (const { entry, body } of store.getShard(archiveKey).iterObjects())
        got.push({ entry, data: Buffer.from(await body.bytes()) })
      expect(got.map(({ entry }) => entry.member_path)).toEqual(expected.map(({ path }) => path))
      for (const [i, { entry, data }] of got.entries()) {
        const want = expected[i] as Expected
        expect(entry).toMatchObject({
          kind: 'file',
          key: `${archiveKey}#${want.path}`,
          member_path: want.path,
          id: want.id,
          meta: want.meta,
          size_bytes: want.data.byteLength,
          archive_key: archiveKey,
        })
        const located = compression === 'gzip' ? ['gz_offset', 'gz_size'] : compression === 'zstd' ? ['zst_offset', 'zst_size'] : []
        expect(Object.keys(entry)).toEqual([
          'kind',
          'key',
          'member_path',
          'id',
          'meta',
          'size_bytes',
          'sha256',
          'offset',
          ...located,
          'archive_key',
        ])
        expect(data.equals(want.data), want.path).toBe(true)
      }
    })

    it('getObject(virtual key) reads each member byte for byte', async () => {
      for (const want of expected) {
        const body = await store.getObject(`${archiveKey}#${want.path}`)
        expect(Buffer.from(await body.bytes()).equals(want.data), want.path).toBe(true)
      }
    })

    it('offsets point at each member in the uncompressed tar', async () => {
      const raw = await bytesOf(archiveKey)
      const tar = compression === 'gzip' ? gunzipSync(raw) : compression === 'zstd' ? unzstd(raw) : raw
      const manifest = await Array.fromAsync(shard.getManifest())
      expect(manifest).toHaveLength(expected.length)
      for (const [i, entry] of manifest.entries()) {
        const want = expected[i] as Expected
        const offset = entry.offset as number
        expect(offset % 512).toBe(0)
        expect(tar.subarray(offset, offset + want.data.byteLength).equals(want.data), want.path).toBe(true)
      }
    })

    // Python's tarfile reads gzip and plain tars (zstd only from Python 3.14, and Python s3exchange not at all).
    it.runIf(compression !== 'zstd')(
      "Python's tarfile reads it: internal manifest first, then the members, bytes and manifest as written",
      async () => {
        const local = await download(archiveKey, `py-shard${extension}`)
        const seen = python(PY_READ_SHARD, [local, '__manifest__.jsonl']) as {
          names: string[]
          manifest: FileEntry[]
          digests: Record<string, string>
        }
        expect(seen.names).toEqual(['__manifest__.jsonl', ...expected.map(({ path }) => path)])
        for (const want of expected) expect(seen.digests[want.path], want.path).toBe(sha256(want.data))
        expect(seen.manifest.map(({ key, member_path, id, meta, size_bytes }) => ({ key, member_path, id, meta, size_bytes }))).toEqual(
          expected.map((want) => ({
            key: `${archiveKey}#${want.path}`,
            member_path: want.path,
            id: want.id,
            meta: want.meta,
            size_bytes: want.data.byteLength,
          })),
        )
      },
    )
  })

  it('GNU tar lists the members of a plain shard', async () => {
    const archiveKey = s3.key('shards/put/gnu.tar')
    await store.putShardArchive(archiveKey, [{ source: Buffer.from('x'), member_path: 'dir/é.txt' }], { compression: null })
    const local = await download(archiveKey, 'gnu.tar')
    const run = spawnSync('tar', ['-tf', local], { encoding: 'utf8' })
    expect(run.status).toBe(0)
    expect(run.stdout.trim().split('\n')).toEqual(['__manifest__.jsonl', 'dir/é.txt'])
  })

  it('a custom internal manifest path, and no items (an archive with an empty internal manifest)', async () => {
    const archiveKey = s3.key('shards/put/custom.tar')
    const shard = await store.putShardArchive(archiveKey, [{ source: Buffer.from('v'), member_path: 'v.txt' }], {
      compression: null,
      internalManifestPath: 'meta/index.jsonl',
    })
    expect(shard.entry.internal_manifest_path).toBe('meta/index.jsonl')
    expect(shard.internalManifestPath).toBe('meta/index.jsonl')
    const members = await Array.fromAsync(Shard.fromEntry(store, shard.entry).iterEntries())
    expect(members.map((entry) => entry.kind === 'file' && entry.member_path)).toEqual(['v.txt'])

    const emptyKey = s3.key('shards/put/empty.tar.gz')
    const empty = await store.putShardArchive(emptyKey, [])
    expect(empty.entry.count).toBe(0)
    expect(await Array.fromAsync(store.getShard(emptyKey).iterEntries())).toEqual([])
  })

  it('an unsupported format, or a compression the key contradicts, is ConfigurationError naming the key and the option; nothing is written', async () => {
    const archiveKey = s3.key('shards/put/unsupported.tar')
    const item = [{ source: Buffer.from('x'), member_path: 'x' }]
    for (const [options, option] of [
      [{ format: 'zip' as never }, 'format'],
      [{ compression: 'bzip2' as never }, 'compression'],
      [{ compression: 'xz' as never }, 'compression'],
      [{ compression: 'zstd' as const }, 'compression'],
      [{ compression: 'gzip' as const }, 'compression'],
    ] as const) {
      const error = await rejection(store.putShardArchive(archiveKey, item, options))
      expect(error, JSON.stringify(options)).toBeInstanceOf(ConfigurationError)
      expect((error as ConfigurationError).key).toBe(archiveKey)
      expect((error as ConfigurationError).option).toBe(option)
      expect((error as Error).message).toContain(archiveKey)
    }
    expect(await head(archiveKey)).toBeUndefined()
  })

  it('compression follows the key: .tar plain, .tar.gz and .tgz gzip, .tar.zst and .tzst zstd; a key without an extension gzip unless told', async () => {
    const item = () => [{ source: Buffer.from('member'), member_path: 'm.txt' }]
    const cases: [string, { compression?: null | 'gzip' }, 'gzip' | 'zstd' | null][] = [
      ['shards/follow/plain.tar', {}, null],
      ['shards/follow/gz.tar.gz', {}, 'gzip'],
      ['shards/follow/gz.tgz', {}, 'gzip'],
      ['shards/follow/zst.tar.zst', {}, 'zstd'],
      ['shards/follow/zst.tzst', {}, 'zstd'],
      ['shards/follow/no-extension', {}, 'gzip'],
      ['shards/follow/no-extension-plain', { compression: null }, null],
    ]
    for (const [name, options, compression] of cases) {
      const archiveKey = s3.key(name)
      const shard = await store.putShardArchive(archiveKey, item(), options)
      expect(shard.entry.compression, name).toBe(compression)
      const magic = (await bytesOf(archiveKey)).subarray(0, 2)
      expect(magic.equals(Buffer.from([0x1f, 0x8b])), name).toBe(compression === 'gzip')
      expect(magic.equals(Buffer.from([0x28, 0xb5])), name).toBe(compression === 'zstd')
      const member = await store.getObject(`${archiveKey}#m.txt`)
      expect(await member.text(), name).toBe('member')
    }
  })

  it('a compression that contradicts the key (zstd for .tar or .tar.gz, gzip or none for .tar.zst) is ConfigurationError naming both; nothing is written', async () => {
    const item = [{ source: Buffer.from('x'), member_path: 'x' }]
    for (const [name, compression] of [
      ['contradiction.tar', 'zstd'],
      ['contradiction.tar.gz', 'zstd'],
      ['contradiction.tgz', 'zstd'],
      ['contradiction.tar.zst', 'gzip'],
      ['contradiction.tar.zst', null],
    ] as const) {
      const archiveKey = s3.key(`shards/put/${name}`)
      const error = await rejection(store.putShardArchive(archiveKey, item, { compression }))
      expect(error, `${name} ${compression}`).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toContain(archiveKey)
      expect((error as Error).message).toContain(JSON.stringify(compression))
      expect(await head(archiveKey)).toBeUndefined()
    }
  })

  it('a bad member path or a size that does not match is ShardWriteError naming the member; nothing is written', async () => {
    const archiveKey = s3.key('shards/put/bad.tar')
    const cases: [ShardItem, string][] = [
      [{ source: Buffer.from('x'), member_path: '../escape.txt' }, '../escape.txt'],
      [{ source: Buffer.from('x'), member_path: '/abs.txt' }, '/abs.txt'],
      [{ source: Buffer.from('x'), member_path: '' }, ''],
      [{ source: Buffer.from('abc'), member_path: 'size.txt', size_bytes: 4 }, 'size.txt'],
      [{ source: Readable.from([Buffer.from('ab')]), member_path: 'short.bin', size_bytes: 3 }, 'short.bin'],
      [{ source: join(dir, 'nope.bin'), member_path: 'missing-file.bin' }, 'missing-file.bin'],
    ]
    for (const [item, memberPath] of cases) {
      const error = await rejection(store.putShardArchive(archiveKey, [{ source: Buffer.from('ok'), member_path: 'ok.txt' }, item]))
      expect(error, memberPath).toBeInstanceOf(ShardWriteError)
      expect((error as ShardWriteError).archiveKey).toBe(archiveKey)
      expect((error as ShardWriteError).memberPath).toBe(memberPath)
    }
    const duplicate = await rejection(
      store.putShardArchive(archiveKey, [
        { source: Buffer.from('1'), member_path: 'same.txt' },
        { source: Buffer.from('2'), member_path: 'same.txt' },
      ]),
    )
    expect(duplicate).toBeInstanceOf(ShardWriteError)
    expect(await head(archiveKey)).toBeUndefined()
  })
})

// ------------------------------------------------------------------ putSharded

describe('putSharded', () => {
  interface Clip {
    path: string
    data: Buffer
  }
  let clips: Clip[]
  let shardEntries: ShardEntry[]

  beforeAll(async () => {
    clips = Array.from({ length: 7 }, (_, i) => ({ path: `${String(i).padStart(4, '0')}.wav`, data: randomBytes(100 + i) }))
    const items: ShardItem[] = clips.map((clip, i) => ({ source: clip.data, member_path: clip.path, id: String(i), meta: { sr: 16000 } }))
    // The seed README flow: split, one archive per batch, then the entries into a manifest.
    shardEntries = []
    for (const [i, batch] of [...Shard.splitItems(items, { maxEntries: 3, maxBytes: 1024 * 1024 * 1024 })].entries()) {
      const archiveKey = s3.key(`sharded/shards/shard-${String(i).padStart(5, '0')}.tar${i === 1 ? '' : '.gz'}`)
      const shard = await store.putShardArchive(archiveKey, batch, { format: 'tar', compression: i === 1 ? null : 'gzip' })
      shardEntries.push(shard.entry)
    }
  })

  async function objects(root: string): Promise<[string, Buffer][]> {
    const got: [string, Buffer][] = []
    for await (const { entry, body } of store.iterObjects(root)) got.push([entry.member_path as string, Buffer.from(await body.bytes())])
    return got
  }

  it('default append_parts: the root gains one ref to a part of the shard entries; iterObjects yields every member', async () => {
    expect(shardEntries.map((entry) => entry.count)).toEqual([3, 3, 1])
    const root = s3.key('sharded/manifest.jsonl')
    const result = (await store.putSharded(root, shardEntries)) as CommitResult
    expect(result.parts).toHaveLength(1)
    expect(await textOf(root)).toBe(`{"kind":"manifest_ref","key":"${result.parts[0]}"}\n`)
    expect(await textOf(result.parts[0] as string)).toBe(`${shardEntries.map((entry) => serializeEntry(entry)).join('\n')}\n`)
    const got = await objects(root)
    expect(got.map(([path]) => path)).toEqual(clips.map((clip) => clip.path))
    for (const [i, [, data]] of got.entries()) expect(data.equals((clips[i] as Clip).data)).toBe(true)

    // A second call appends a second ref.
    await store.putSharded(root, shardEntries.slice(0, 1), { updateMode: 'append_parts' })
    expect(refsOf(await textOf(root))).toHaveLength(2)
    expect((await objects(root)).length).toBe(clips.length + 3)
  })

  it('an unknown updateMode is ConfigurationError', async () => {
    const root = s3.key('sharded/bad-mode.jsonl')
    expect(await rejection(store.putSharded(root, shardEntries, { updateMode: 'replace' as never }))).toBeInstanceOf(ConfigurationError)
    expect(await head(root)).toBeUndefined()
  })

  it('updateMode overwrite: the root holds the shard entries themselves', async () => {
    const root = s3.key('sharded/overwrite.jsonl')
    await store.writeManifest(root, [fileEntry('old.wav')])
    await store.putSharded(root, shardEntries, { updateMode: 'overwrite' })
    expect(await Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false }))).toStrictEqual(shardEntries)
    const got = await objects(root)
    expect(got.map(([path]) => path)).toEqual(clips.map((clip) => clip.path))
    for (const [i, [, data]] of got.entries()) expect(data.equals((clips[i] as Clip).data)).toBe(true)
  })
})
