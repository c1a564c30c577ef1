/**
 * writeManifestObject and ManifestObjectWriter against a real (local) S3: the bytes are exactly
 * what Python's json.dumps(entry, separators=(",", ":")) gives, "\n" for no entries, a failed
 * write leaves the old object as it was, and a 1,000,000-entry manifest goes up as a multipart
 * upload and reads back through readManifest.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { countRequests, pendingMultipartUploads, trackMultipartUploads } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import type { ManifestEntry } from '../format/entries.js'
import { readManifest } from '../operators/read-manifest.js'
import { writeManifestObject } from '../operators/write-manifest-object.js'
import type { S3Context } from '../s3/context.js'
import { ManifestObjectWriter } from './manifest-object.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const clients: S3Client[] = []
afterAll(() => {
  for (const client of clients) client.destroy()
})

function ctx(): S3Context {
  return { client: s3.client, bucket: s3.bucket }
}

function counted() {
  const client = s3.s3.createClient()
  clients.push(client)
  return { ctx: { client, bucket: s3.bucket }, counts: countRequests(client), started: trackMultipartUploads(client) }
}

async function getBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

/** What Python writes for these entries: one json.dumps(entry, separators=(",", ":")) per line. */
function pythonManifest(entries: unknown[]): Buffer {
  const script = [
    'import json, sys',
    'entries = json.loads(sys.stdin.read())',
    "sys.stdout.write(''.join(json.dumps(e, separators=(',', ':')) + '\\n' for e in entries) if entries else '\\n')",
  ].join('\n')
  return execFileSync('python3', ['-c', script], { input: JSON.stringify(entries) })
}

const ENTRIES: ManifestEntry[] = [
  {
    kind: 'file',
    key: 'training/123/samples/ünïcødé 🎧.wav',
    id: 'ü-001',
    meta: { sr: 16000, lang: '日本語', ok: true, bad: false, none: null, list: [1, 'ß', [null]], nested: { këy: 'välue' } },
    content_type: 'audio/wav',
    size_bytes: 123456,
    etag: '9b2cf535f27731c974343645a3985328',
  },
  { kind: 'file', key: 'controls', id: 'q"uote\\back/slash', meta: { c: '\b\f\n\r\t\u0000\u0001\u001f\u007f\u0080\u2028\u2029\uffff' } },
  { kind: 'file', key: 'surrogates', meta: { lone: '\ud800x\udfff', pair: '\ud83c\udfa7', max: 9007199254740991, neg: -42 } },
  {
    kind: 'shard',
    archive_key: 'ds/shards/shard-00000.tar',
    format: 'tar',
    compression: null,
    internal_manifest_path: '__manifest__.jsonl',
    count: 3,
    size_bytes: 10240,
    meta: { etag: 'f8ae981403b239e147caee7fa7d5992a-2' },
  },
  { kind: 'manifest_ref', key: 'ds/manifests/part-20261124-101500-3afdeab9.jsonl' },
  { kind: 'file', key: 'unknown fields', zzz: 1, aaa: { b: [] }, empty: {} },
]

describe('writeManifestObject', () => {
  it('no entries give exactly "\\n", as Python writes', async () => {
    const key = s3.key('empty/manifest.jsonl')
    const written = await writeManifestObject(ctx(), key, [])
    expect(written.entries).toBe(0)
    expect(written.size).toBe(1)
    expect((await getBytes(key)).toString('latin1')).toBe('\n')
    expect(pythonManifest([]).toString('latin1')).toBe('\n')
  })

  it("writes byte for byte what Python's json.dumps(separators=(',', ':')) writes, with the same ETag", async () => {
    const key = s3.key('exact/manifest.jsonl')
    const expected = pythonManifest(ENTRIES)
    // Sanity: Python escapes non-ASCII, so the file is ASCII.
    expect(expected.every((byte) => byte < 0x80)).toBe(true)
    expect(expected.toString()).toContain('\\u00fc')
    const written = await writeManifestObject(ctx(), key, ENTRIES)
    const stored = await getBytes(key)
    expect(stored.toString('latin1')).toBe(expected.toString('latin1'))
    expect(written.etag).toBe(createHash('md5').update(expected).digest('hex'))
    expect(written.entries).toBe(ENTRIES.length)
    expect(written.size).toBe(expected.byteLength)
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(head.ContentType).toBe('application/x-ndjson')
  })

  it('reads back as the same entries', async () => {
    const key = s3.key('exact/roundtrip.jsonl')
    await writeManifestObject(ctx(), key, ENTRIES)
    const read: ManifestEntry[] = []
    for await (const entry of readManifest(ctx(), key)) read.push(entry)
    expect(read).toEqual(ENTRIES)
  })

  it('replaces the object; an async iterable of entries works too', async () => {
    const key = s3.key('overwrite/manifest.jsonl')
    await writeManifestObject(ctx(), key, ENTRIES)
    async function* two(): AsyncGenerator<ManifestEntry> {
      yield { kind: 'file', key: 'a' }
      yield { kind: 'file', key: 'b' }
    }
    await writeManifestObject(ctx(), key, two())
    expect((await getBytes(key)).toString()).toBe('{"kind":"file","key":"a"}\n{"kind":"file","key":"b"}\n')
  })

  it('entries failing midway leave the old object as it was, and no open multipart upload', async () => {
    const c = counted()
    const key = s3.key('overwrite/failing.jsonl')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'old\n' }))
    const pad = 'p'.repeat(100_000)
    async function* entries(): AsyncGenerator<ManifestEntry> {
      for (let i = 0; i < 60; i++) yield { kind: 'file', key: `k${i}`, meta: { pad } }
      throw new Error('the entries broke')
    }
    await expect(writeManifestObject(c.ctx, key, entries(), { partSize: 5 * MiB })).rejects.toThrow('the entries broke')
    expect(c.started).toHaveLength(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, c.started, { prefix: s3.prefix })).toEqual([])
    expect((await getBytes(key)).toString()).toBe('old\n')
  })

  it('1,000,000 entries: one multipart upload, read back through readManifest', async () => {
    const c = counted()
    const key = s3.key('big/manifest.jsonl')
    const total = 1_000_000
    function* entries(): Generator<ManifestEntry> {
      for (let i = 0; i < total; i++) yield { kind: 'file', key: `ds/samples/${i}.wav`, id: String(i), size_bytes: i }
    }
    const written = await writeManifestObject(c.ctx, key, entries())
    expect(written.entries).toBe(total)
    expect(c.counts.PutObjectCommand).toBeUndefined()
    expect(c.counts.CreateMultipartUploadCommand).toBe(1)
    expect(c.counts.UploadPartCommand).toBeGreaterThan(2)
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(written.size).toBe(head.ContentLength)
    expect(written.etag).toBe(head.ETag?.replace(/"/g, ''))

    let count = 0
    let first: ManifestEntry | undefined
    let last: ManifestEntry | undefined
    for await (const entry of readManifest(ctx(), key)) {
      if (count === 0) first = entry
      last = entry
      count++
    }
    expect(count).toBe(total)
    expect(first).toEqual({ kind: 'file', key: 'ds/samples/0.wav', id: '0', size_bytes: 0 })
    expect(last).toEqual({ kind: 'file', key: `ds/samples/${total - 1}.wav`, id: String(total - 1), size_bytes: total - 1 })
  })
})

describe('ManifestObjectWriter', () => {
  it('counts entries and bytes, and publishes only on finish()', async () => {
    const key = s3.key('writer/manifest.jsonl')
    const writer = new ManifestObjectWriter(ctx(), key)
    expect(writer.key).toBe(key)
    for (const entry of ENTRIES) await writer.add(entry)
    expect(writer.entries).toBe(ENTRIES.length)
    const expected = pythonManifest(ENTRIES)
    expect(writer.bytes).toBe(expected.byteLength)
    await expect(s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))).rejects.toThrow()
    const written = await writer.finish()
    expect(written).toMatchObject({ key, entries: ENTRIES.length, size: expected.byteLength })
    expect((await getBytes(key)).equals(expected)).toBe(true)
  })

  it('abort() publishes nothing', async () => {
    const key = s3.key('writer/aborted.jsonl')
    const writer = new ManifestObjectWriter(ctx(), key)
    await writer.add({ kind: 'file', key: 'a' })
    await writer.abort()
    await expect(s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))).rejects.toThrow()
  })
})
