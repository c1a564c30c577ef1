/**
 * putObject and putObjects against a real (local) S3: every kind of data, the FileEntry exactly
 * as Python returns it (ETag from the upload, no HEAD), a large stream as a multipart upload, and
 * putObjects keeping input order under concurrency and stopping at the first error.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, type S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { countRequests, pendingMultipartUploads, type S3Proxy, startS3Proxy, trackMultipartUploads } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterAll, describe, expect, it } from 'vitest'
import type { FileEntry } from '../format/entries.js'
import { InvalidSourceError, S3RequestError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { type PutObjectItem, putObject, putObjects } from './put-objects.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const dir = mkdtempSync(join(tmpdir(), 's3x-put-object-'))
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
  rmSync(dir, { recursive: true, force: true })
})

function counted(config: S3ClientConfig = {}) {
  const client = s3.s3.createClient(config)
  clients.push(client)
  const ctx: S3Context = { client, bucket: s3.bucket }
  return { ctx, client, counts: countRequests(client), started: trackMultipartUploads(client) }
}

async function getBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

async function head(key: string) {
  return s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
}

async function exists(key: string): Promise<boolean> {
  try {
    await head(key)
    return true
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false
    throw error
  }
}

function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex')
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

const FIELDS = ['kind', 'key', 'id', 'meta', 'content_type', 'size_bytes', 'etag', 'sha256']

describe('putObject', () => {
  const data = randomBytes(10_000)

  it.each([
    ['bytes', () => data],
    [
      'a file path',
      () => {
        const path = join(dir, 'clip.wav')
        writeFileSync(path, data)
        return path
      },
    ],
    ['a Readable', () => Readable.from(chunks(data, 3000))],
    ['an async iterable of bytes', () => chunks(data, 4096)],
  ])(
    '%s: uploads and returns exactly {kind, key, id, meta, content_type, size_bytes, etag, sha256}, without a HEAD',
    async (name, source) => {
      const c = counted()
      const key = s3.key(`put/${name.replace(/ /g, '-')}/clip-001.wav`)
      const entry = await putObject(c.ctx, key, source())
      const info = await head(key)
      expect(entry).toStrictEqual({
        kind: 'file',
        key,
        id: 'clip-001',
        meta: null,
        content_type: null,
        size_bytes: data.byteLength,
        etag: md5(data),
        sha256: sha256(data),
      })
      expect(Object.keys(entry)).toEqual(FIELDS)
      expect(entry.etag).toBe(info.ETag?.replace(/"/g, ''))
      expect(c.counts.HeadObjectCommand).toBeUndefined()
      expect(c.counts.PutObjectCommand).toBe(1)
      expect((await getBytes(key)).equals(data)).toBe(true)
    },
  )

  it('keeps the id, meta and content type given; the content type is set on the object', async () => {
    const key = s3.key('put/options/a.json')
    const entry = await putObject({ client: s3.client, bucket: s3.bucket }, key, Buffer.from('{}'), {
      id: 'my-id',
      meta: { sr: 16000, tags: ['ü'] },
      contentType: 'application/json',
    })
    expect(entry).toStrictEqual({
      kind: 'file',
      key,
      id: 'my-id',
      meta: { sr: 16000, tags: ['ü'] },
      content_type: 'application/json',
      size_bytes: 2,
      etag: md5(Buffer.from('{}')),
      sha256: sha256(Buffer.from('{}')),
    })
    expect((await head(key)).ContentType).toBe('application/json')
  })

  it('infers the id as Python does, or with the inferId given', async () => {
    const ctx = { client: s3.client, bucket: s3.bucket }
    expect((await putObject(ctx, s3.key('put/infer/shard.tar.gz'), Buffer.from('x'))).id).toBe('shard.tar')
    expect((await putObject(ctx, s3.key('put/infer/noext'), Buffer.from('x'))).id).toBe('noext')
    expect((await putObject(ctx, s3.key('put/infer/a.b'), Buffer.from('x'), { inferId: (k) => `id:${k.length}` })).id).toMatch(/^id:\d+$/)
  })

  it('an empty object', async () => {
    const key = s3.key('put/empty.bin')
    const entry = await putObject({ client: s3.client, bucket: s3.bucket }, key, new Uint8Array(0))
    expect(entry).toMatchObject({ size_bytes: 0, etag: md5(new Uint8Array(0)), sha256: sha256(new Uint8Array(0)) })
    expect((await head(key)).ContentLength).toBe(0)
  })

  it('a 12 MiB stream goes up as a multipart upload and reads back intact', async () => {
    const c = counted()
    const key = s3.key('put/big/stream.bin')
    const big = randomBytes(12 * MiB)
    const entry = await putObject(c.ctx, key, Readable.from(chunks(big, 256 * 1024)))
    expect(c.counts.PutObjectCommand).toBeUndefined()
    expect(c.counts.CreateMultipartUploadCommand).toBe(1)
    expect(c.counts.UploadPartCommand).toBe(2)
    // Relies on the server: a HEAD only where the completion answers no ETag (Ceph RGW 16's is empty).
    expect(c.counts.HeadObjectCommand).toBe(testServer().supports('an ETag in the CompleteMultipartUpload answer') ? undefined : 1)
    const info = await head(key)
    expect(entry).toMatchObject({ key, id: 'stream', size_bytes: big.byteLength, etag: info.ETag?.replace(/"/g, ''), sha256: sha256(big) })
    expect(info.ContentLength).toBe(big.byteLength)
    expect((await getBytes(key)).equals(big)).toBe(true)
  })

  it('a missing file is InvalidSourceError naming the key; nothing is sent', async () => {
    const c = counted()
    const key = s3.key('put/missing.wav')
    const error = await putObject(c.ctx, key, join(dir, 'nope.wav')).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(InvalidSourceError)
    expect(error).toMatchObject({ key })
    expect(c.counts).toEqual({})
  })

  it('a stream failing after a part was uploaded aborts the upload', async () => {
    const c = counted()
    const key = s3.key('put/failing.bin')
    async function* breaking() {
      for (let i = 0; i < 10; i++) yield randomBytes(MiB)
      throw new Error('the stream broke')
    }
    await expect(putObject(c.ctx, key, breaking(), { partSize: 5 * MiB })).rejects.toThrow('the stream broke')
    expect(c.started).toHaveLength(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, c.started, { prefix: s3.prefix })).toEqual([])
    expect(await exists(key)).toBe(false)
  })
})

describe('putObjects', () => {
  it('yields entries in input order, with uploads running concurrently', async () => {
    const c = counted()
    // The first upload waits until the fourth has finished, so the uploads finish out of order.
    let fourthDone: () => void = () => {}
    const fourth = new Promise<void>((resolve) => {
      fourthDone = resolve
    })
    let inFlight = 0
    let maxInFlight = 0
    const finished: string[] = []
    c.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'PutObjectCommand') return next(args)
        const key = (args.input as { Key: string }).Key
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        try {
          if (key.endsWith('/0.bin')) await fourth
          const result = await next(args)
          finished.push(key)
          if (key.endsWith('/3.bin')) fourthDone()
          return result
        } finally {
          inFlight--
        }
      },
      { step: 'initialize', name: 'first-waits-for-fourth' },
    )
    const items: PutObjectItem[] = Array.from({ length: 20 }, (_, i) => ({
      key: s3.key(`many/${i}.bin`),
      data: Buffer.from(`object ${i}`),
      meta: { i },
    }))
    const entries = await pipe(items, putObjects(c.ctx, { concurrency: 4 }), Array.fromAsync<FileEntry>)
    expect(entries.map((entry) => entry.key)).toEqual(items.map((item) => item.key))
    expect(entries.map((entry) => entry.meta)).toEqual(items.map((_, i) => ({ i })))
    expect(entries.every((entry, i) => entry.etag === md5(Buffer.from(`object ${i}`)))).toBe(true)
    expect(maxInFlight).toBeGreaterThan(1)
    expect(maxInFlight).toBeLessThanOrEqual(4)
    // The uploads did finish out of order; the output is in order anyway.
    expect(finished).not.toEqual(items.map((item) => item.key))
  })

  it('stops at the first error with a typed error; later items are not read', async () => {
    const c = counted()
    let pulled = 0
    let closed = false
    async function* items(): AsyncGenerator<PutObjectItem> {
      try {
        for (let i = 0; i < 20; i++) {
          pulled++
          yield { key: s3.key(`stop/${i}.bin`), data: i === 3 ? join(dir, 'missing.bin') : Buffer.from(String(i)) }
        }
      } finally {
        closed = true
      }
    }
    const got: FileEntry[] = []
    const error = await (async () => {
      for await (const entry of putObjects(c.ctx, { concurrency: 2 })(items())) got.push(entry)
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(InvalidSourceError)
    expect(error).toMatchObject({ key: s3.key('stop/3.bin') })
    expect(got.map((entry) => entry.key)).toEqual([0, 1, 2].map((i) => s3.key(`stop/${i}.bin`)))
    expect(closed).toBe(true)
    expect(pulled).toBeLessThanOrEqual(6)
    for (let i = pulled; i < 20; i++) expect(await exists(s3.key(`stop/${i}.bin`))).toBe(false)
  })

  it('an S3 error is an S3RequestError naming the key', async () => {
    const failingKey = s3.key('s3error/2.bin')
    const proxy = await startS3Proxy({
      target: s3.s3.endpoint,
      intercept: (request) =>
        request.method === 'PUT' && decodeURIComponent(new URL(request.url, 'http://x').pathname) === `/${s3.bucket}/${failingKey}`
          ? { status: 403, code: 'AccessDenied' }
          : undefined,
    })
    proxies.push(proxy)
    const c = counted({ endpoint: proxy.endpoint })
    const items: PutObjectItem[] = Array.from({ length: 5 }, (_, i) => ({ key: s3.key(`s3error/${i}.bin`), data: Buffer.from('x') }))
    const got: FileEntry[] = []
    const error = await (async () => {
      for await (const entry of putObjects(c.ctx, { concurrency: 1 })(items)) got.push(entry)
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ key: failingKey, statusCode: 403, operation: 'PutObject' })
    expect(got).toHaveLength(2)
    expect(await exists(failingKey)).toBe(false)
    expect(await exists(s3.key('s3error/4.bin'))).toBe(false)
  })
})
