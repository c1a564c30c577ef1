/**
 * ManifestPartsWriter and writeManifestParts against a real (local) S3, through a proxy that
 * enforces conditional writes: parts rotate at partMaxEntries / partMaxBytes and hold exactly the
 * serialized lines; the root gains one ref per part in one write, or nothing at all when the
 * entries fail midway (PublishError listing the parts left behind, no open multipart upload).
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import {
  countRequests,
  type MultipartUpload,
  pendingMultipartUploads,
  type RequestCounts,
  type S3Proxy,
  startS3Proxy,
  trackMultipartUploads,
} from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FileEntry, type ManifestEntry, serializeEntry } from '../format/entries.js'
import { PublishError } from '../format/errors.js'
import { writeManifestParts } from '../operators/write-manifest-parts.js'
import type { S3Context } from '../s3/context.js'
import { rememberServerCapabilities } from '../s3/server-knowledge.js'
import { ManifestPartsWriter } from './parts-writer.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const clients: S3Client[] = []
let proxy: S3Proxy

beforeAll(async () => {
  proxy = await startS3Proxy({ target: s3.s3, enforceConditionalWrites: true })
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  await proxy.stop()
})

interface Watched {
  ctx: S3Context
  counts: RequestCounts
  started: MultipartUpload[]
}

/**
 * A client through the enforcing proxy, counted and tracked. It is told the If-Match form the
 * server behind the proxy honours (as a probe, or its first conditional write, would tell it), so
 * that a root update is one write on every server (Ceph RGW 16 refuses the quoted form a new client
 * sends first: conditional-write.test.ts).
 */
function watched(signal?: AbortSignal): Watched {
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  clients.push(client)
  rememberServerCapabilities(client, { conditionalPut: testServer().capabilities.conditionalPut })
  return { ctx: { client, bucket: s3.bucket, signal }, counts: countRequests(client), started: trackMultipartUploads(client) }
}

async function getText(key: string): Promise<string> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return (response.Body as { transformToString(): Promise<string> }).transformToString()
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    return true
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false
    throw error
  }
}

/** PutObject and CompleteMultipartUpload requests that wrote `key`, as the proxy saw them. */
function writesTo(key: string): number {
  return proxy.requests.filter((request) => {
    const url = new URL(request.url, 'http://x')
    if (decodeURIComponent(url.pathname) !== `/${s3.bucket}/${key}`) return false
    return (
      (request.method === 'PUT' && !url.searchParams.has('partNumber')) || (request.method === 'POST' && url.searchParams.has('uploadId'))
    )
  }).length
}

function lines(entries: ManifestEntry[]): string {
  return entries.map((entry) => `${serializeEntry(entry)}\n`).join('')
}

function fileEntries(count: number, tag = 'e'): FileEntry[] {
  return Array.from({ length: count }, (_, i) => ({ kind: 'file', key: `ds/${tag}-${i}.wav`, id: `${tag}${i}`, meta: { i, note: 'é' } }))
}

function refsOf(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line).key as string)
}

describe('parts', () => {
  it('rotate at partMaxEntries; each part holds exactly the serialized lines; the root gains one ref per part in one write', async () => {
    const w = watched()
    const root = s3.key('entries/manifest.jsonl')
    const existing = '{"kind":"file","key":"old.wav"}\n'
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: root, Body: existing }))
    const entries = fileEntries(25)
    const result = await pipe(entries, writeManifestParts(w.ctx, root, { partMaxEntries: 10 }))
    expect(result.root).toBe(root)
    expect(result.entries).toBe(25)
    expect(result.parts).toHaveLength(3)
    for (const part of result.parts)
      expect(part).toMatch(new RegExp(`^${s3.key('entries/manifests/part-')}\\d{8}-\\d{6}-[0-9a-f]{8}\\.jsonl$`))
    expect(new Set(result.parts).size).toBe(3)
    expect(await getText(result.parts[0] as string)).toBe(lines(entries.slice(0, 10)))
    expect(await getText(result.parts[1] as string)).toBe(lines(entries.slice(10, 20)))
    expect(await getText(result.parts[2] as string)).toBe(lines(entries.slice(20)))
    const rootText = await getText(root)
    expect(rootText).toBe(existing + lines(result.parts.map((key) => ({ kind: 'manifest_ref', key }))))
    expect(writesTo(root)).toBe(1)
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: root }))
    expect(result.rootEtag).toBe(head.ETag?.replace(/"/g, ''))
    expect(head.ContentType).toBe('application/x-ndjson')
  })

  it('rotate once a part reaches partMaxBytes', async () => {
    const w = watched()
    const root = s3.key('bytes/manifest.jsonl')
    const entries: FileEntry[] = Array.from({ length: 40 }, (_, i) => ({ kind: 'file', key: `k/${'x'.repeat((i * 37) % 90)}-${i}` }))
    const max = 400
    // Expected: a part holds at most max bytes: a line that would take it past max starts the next
    // part, and a part that reaches max exactly is closed.
    const expected: FileEntry[][] = [[]]
    let bytes = 0
    for (const entry of entries) {
      const length = serializeEntry(entry).length + 1
      if ((expected.at(-1) as FileEntry[]).length > 0 && bytes + length > max) {
        expected.push([])
        bytes = 0
      }
      ;(expected.at(-1) as FileEntry[]).push(entry)
      bytes += length
      if (bytes >= max) {
        expected.push([])
        bytes = 0
      }
    }
    if (expected.at(-1)?.length === 0) expected.pop()
    const result = await pipe(entries, writeManifestParts(w.ctx, root, { partMaxBytes: max }))
    expect(result.parts).toHaveLength(expected.length)
    expect(expected.length).toBeGreaterThan(3)
    for (const [i, part] of result.parts.entries()) {
      const text = await getText(part)
      expect(text).toBe(lines(expected[i] as FileEntry[]))
      // At most partMaxBytes per part.
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(max)
      // ...and full: the next part's first line would not have fitted.
      const next = (expected[i + 1] as FileEntry[] | undefined)?.[0]
      if (next) expect(Buffer.byteLength(text) + serializeEntry(next).length + 1).toBeGreaterThan(max)
    }
    expect(refsOf(await getText(root))).toEqual(result.parts)
    expect(writesTo(root)).toBe(1)
  })

  it('a root that does not exist is created; no entries publish nothing', async () => {
    const w = watched()
    const root = s3.key('new/manifest.jsonl')
    const none = await pipe([], writeManifestParts(w.ctx, root))
    expect(none).toEqual({ root, parts: [], entries: 0, rootEtag: undefined })
    expect(await exists(root)).toBe(false)
    const one = await pipe(fileEntries(2), writeManifestParts(w.ctx, root))
    expect(one.parts).toHaveLength(1)
    expect(await getText(root)).toBe(lines([{ kind: 'manifest_ref', key: one.parts[0] as string }]))
    expect(await getText(one.parts[0] as string)).toBe(lines(fileEntries(2)))
  })

  it('concurrent writers each add their refs contiguously (one write per commit) and none is lost', async () => {
    const root = s3.key('concurrent/manifest.jsonl')
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, writer) =>
        pipe(fileEntries(6, `w${writer}`), writeManifestParts(watched().ctx, root, { partMaxEntries: 2, baseDelayMs: 2 })),
      ),
    )
    const refs = refsOf(await getText(root))
    expect(refs).toHaveLength(12)
    for (const result of results) {
      const at = refs.indexOf(result.parts[0] as string)
      expect(refs.slice(at, at + 3)).toEqual(result.parts)
    }
  })
})

describe('ManifestPartsWriter', () => {
  it('reports the open part, pending counts and uploaded parts; commit publishes only new parts', async () => {
    const w = watched()
    const root = s3.key('writer/manifest.jsonl')
    const writer = new ManifestPartsWriter(w.ctx, root, { partMaxEntries: 3 })
    expect(writer.openPart).toBeUndefined()
    const entries = fileEntries(4)
    for (const entry of entries) await writer.add(entry)
    expect(writer.parts).toHaveLength(1)
    expect(writer.pending).toEqual({ entries: 1, bytes: serializeEntry(entries[3] as FileEntry).length + 1 })
    expect(writer.openPart).toMatch(/manifests\/part-/)
    const first = await writer.finish()
    expect(first.parts).toHaveLength(2)
    expect(first.entries).toBe(4)
    expect(writer.parts).toEqual([])
    expect(writer.openPart).toBeUndefined()
    await writer.add(entries[0] as FileEntry)
    const second = await writer.finish()
    expect(second.parts).toHaveLength(1)
    expect(refsOf(await getText(root))).toEqual([...first.parts, ...second.parts])
    const empty = await writer.finish()
    expect(empty.parts).toEqual([])
    expect(refsOf(await getText(root))).toHaveLength(3)
  })

  it('abort() drops the open part and keeps the uploaded ones listed', async () => {
    const w = watched()
    const root = s3.key('writer/aborted.jsonl')
    const writer = new ManifestPartsWriter(w.ctx, root, { partMaxEntries: 2 })
    for (const entry of fileEntries(3)) await writer.add(entry)
    const open = writer.openPart as string
    await writer.abort()
    expect(writer.parts).toHaveLength(1)
    expect(await exists(writer.parts[0] as string)).toBe(true)
    expect(await exists(open)).toBe(false)
    expect(await exists(root)).toBe(false)
  })
})

describe('failures', () => {
  it('entries failing midway: PublishError listing the uploaded parts, root unchanged, no open multipart upload', async () => {
    const w = watched()
    const root = s3.key('fail/manifest.jsonl')
    const existing = '{"kind":"manifest_ref","key":"before.jsonl"}\n'
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: root, Body: existing }))
    const pad = 'p'.repeat(100_000)
    async function* entries(): AsyncGenerator<ManifestEntry> {
      // ~100 KB lines: the first part closes at 6 MiB (multipart), the second is past 5 MiB (multipart, open) when it fails.
      for (let i = 0; i < 120; i++) yield { kind: 'file', key: `ds/${i}.wav`, meta: { pad } }
      throw new Error('the entries broke')
    }
    const error = await pipe(entries, writeManifestParts(w.ctx, root, { partMaxBytes: 6 * MiB, partSize: 5 * MiB })).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PublishError)
    const publishError = error as PublishError
    expect(publishError.key).toBe(root)
    expect(publishError.message).toContain(root)
    expect((publishError.cause as Error).message).toBe('the entries broke')
    expect(publishError.uploadedKeys).toHaveLength(1)
    const [uploaded] = publishError.uploadedKeys as [string]
    expect(await exists(uploaded)).toBe(true)
    // As many ~100 KB lines as fit in 6 MiB: a part never exceeds partMaxBytes.
    expect(refsOf(await getText(uploaded))).toHaveLength(
      Math.floor((6 * MiB) / (serializeEntry({ kind: 'file', key: 'ds/10.wav', meta: { pad } }).length + 1)),
    )
    // Both parts went multipart; the open one was aborted.
    expect(w.started).toHaveLength(2)
    expect(w.started[0]?.key).toBe(uploaded)
    expect(await exists(w.started[1]?.key as string)).toBe(false)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
    expect(await getText(root)).toBe(existing)
    expect(writesTo(root)).toBe(0)
  })

  it('a failure before any part was uploaded: PublishError with no uploaded keys', async () => {
    const w = watched()
    const root = s3.key('fail/early.jsonl')
    async function* entries(): AsyncGenerator<ManifestEntry> {
      yield { kind: 'file', key: 'a' }
      throw new Error('early')
    }
    const error = await pipe(entries, writeManifestParts(w.ctx, root)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).uploadedKeys).toEqual([])
    expect(w.counts).toEqual({})
    expect(await exists(root)).toBe(false)
  })

  it("a cancellation by the caller's signal comes out as the AbortError, and publishes nothing", async () => {
    const controller = new AbortController()
    const w = watched(controller.signal)
    const root = s3.key('fail/cancelled.jsonl')
    async function* entries(): AsyncGenerator<ManifestEntry> {
      yield* fileEntries(5)
      controller.abort()
      yield* fileEntries(5, 'after')
    }
    const error = await pipe(entries, writeManifestParts(w.ctx, root, { partMaxEntries: 3 })).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).not.toBeInstanceOf(PublishError)
    expect((error as Error).name).toBe('AbortError')
    expect(await exists(root)).toBe(false)
  })
})
