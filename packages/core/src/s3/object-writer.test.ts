/**
 * ObjectWriter against a real (local) S3: a single PUT up to a part, a multipart upload beyond
 * (parts of exactly partSize, bytes intact), conditional writes through the enforcing proxy (bytes
 * larger than a part in one conditional PUT; a multipart one where completions are known to keep
 * conditions), conditional multipart writes refused where they are not (nothing sent), abort, and
 * a failing part (nothing published, nothing left open). The layout with part 1 sent
 * last is tested beside its writer, in archive/head-last-writer.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import {
  countRequests,
  MEASURED_CAPABILITIES,
  type MultipartUpload,
  pendingMultipartUploads,
  type RequestCounts,
  rejection,
  type S3Proxy,
  type S3ProxyOptions,
  startS3Proxy,
  trackMultipartUploads,
} from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { ConditionalWriteUnsupportedError, S3RequestError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { ObjectWriter, putBytes } from './object-writer.js'
import { rememberServerCapabilities } from './server-knowledge.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const PART = 5 * MiB
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

interface Watched {
  ctx: S3Context
  counts: RequestCounts
  started: MultipartUpload[]
  /** Body sizes of UploadPart calls, in the order they were sent. */
  parts: { partNumber: number; size: number }[]
  /** Most UploadPart calls in flight at once. */
  maxPartsInFlight: () => number
}

/** A new client (direct, or through `endpoint`) whose requests are counted and whose uploads are tracked. */
function watched(config: S3ClientConfig = {}): Watched {
  const client = s3.s3.createClient(config)
  clients.push(client)
  const parts: Watched['parts'] = []
  let inFlight = 0
  let maxInFlight = 0
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args)
      const input = args.input as { PartNumber: number; Body: Uint8Array }
      parts.push({ partNumber: input.PartNumber, size: input.Body.byteLength })
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      try {
        return await next(args)
      } finally {
        inFlight--
      }
    },
    { step: 'initialize', name: 'watch-parts' },
  )
  return {
    ctx: { client, bucket: s3.bucket },
    counts: countRequests(client),
    started: trackMultipartUploads(client),
    parts,
    maxPartsInFlight: () => maxInFlight,
  }
}

async function proxy(options: Omit<S3ProxyOptions, 'target'>): Promise<S3Proxy> {
  const started = await startS3Proxy({ target: s3.s3, ...options })
  proxies.push(started)
  return started
}

async function getBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

async function head(key: string) {
  try {
    return await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
    throw error
  }
}

function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex')
}

/** Writes `data` in chunks of `chunk` bytes. */
async function writeChunks(writer: ObjectWriter, data: Uint8Array, chunk: number): Promise<void> {
  for (let i = 0; i < data.byteLength; i += chunk) await writer.add(data.subarray(i, i + chunk))
}

async function pending(started: MultipartUpload[]): Promise<MultipartUpload[]> {
  return pendingMultipartUploads(s3.client, s3.bucket, started, { prefix: s3.prefix })
}

describe('up to a part: one PUT', () => {
  it('writes small chunks as one PutObject, with the ETag from the PUT and no HEAD', async () => {
    const w = watched()
    const key = s3.key('small/one.txt')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART, contentType: 'text/plain' })
    await writer.add(Buffer.from('hello '))
    await writer.add(new Uint8Array(0))
    await writer.add(Buffer.from('world'))
    expect(writer.size).toBe(11)
    const written = await writer.finish()
    expect(written).toEqual({ key, etag: md5(Buffer.from('hello world')), size: 11 })
    expect(w.counts).toEqual({ PutObjectCommand: 1 })
    expect(writer.multipart).toBe(false)
    expect((await getBytes(key)).toString()).toBe('hello world')
    const info = await head(key)
    expect(info?.ContentType).toBe('text/plain')
    expect(info?.ETag).toBe(`"${written.etag}"`)
  })

  it('an object of exactly partSize bytes is still one PUT', async () => {
    const w = watched()
    const key = s3.key('small/exact.bin')
    const data = randomBytes(PART)
    const written = await putBytes(w.ctx, key, data, { partSize: PART })
    expect(written.size).toBe(PART)
    expect(w.counts).toEqual({ PutObjectCommand: 1 })
    expect((await getBytes(key)).equals(data)).toBe(true)
  })

  it('nothing written gives an empty object', async () => {
    const key = s3.key('small/empty.bin')
    const written = await new ObjectWriter({ client: s3.client, bucket: s3.bucket }, key).finish()
    expect(written).toEqual({ key, etag: md5(new Uint8Array(0)), size: 0 })
    expect((await head(key))?.ContentLength).toBe(0)
  })

  it('refuses writes and a second finish once finished', async () => {
    const writer = new ObjectWriter({ client: s3.client, bucket: s3.bucket }, s3.key('small/twice.txt'))
    await writer.add(Buffer.from('x'))
    await writer.finish()
    await expect(writer.add(Buffer.from('y'))).rejects.toThrow(/already finished/)
    await expect(writer.finish()).rejects.toThrow(/already finished/)
  })
})

describe('beyond a part: multipart', () => {
  it('sends parts of exactly partSize, the rest last, and the object reads back intact (a HEAD only where the completion answers no ETag)', async () => {
    const w = watched()
    const key = s3.key('multi/a.bin')
    const data = randomBytes(2 * PART + 123_457)
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART })
    await writeChunks(writer, data, 777_777)
    expect(writer.multipart).toBe(true)
    const written = await writer.finish()
    expect(written.size).toBe(data.byteLength)
    expect(w.counts.CreateMultipartUploadCommand).toBe(1)
    expect(w.counts.UploadPartCommand).toBe(3)
    expect(w.counts.CompleteMultipartUploadCommand).toBe(1)
    expect(w.counts.PutObjectCommand).toBeUndefined()
    // Relies on the server: one HEAD where the completion answers no ETag (Ceph RGW 16), none where it does.
    expect(w.counts.HeadObjectCommand ?? 0).toBe(testServer().supports('an ETag in the CompleteMultipartUpload answer') ? 0 : 1)
    expect([...w.parts].sort((a, b) => a.partNumber - b.partNumber)).toEqual([
      { partNumber: 1, size: PART },
      { partNumber: 2, size: PART },
      { partNumber: 3, size: 123_457 },
    ])
    expect((await getBytes(key)).equals(data)).toBe(true)
    const info = await head(key)
    expect(info?.ContentLength).toBe(data.byteLength)
    expect(written.etag).toBe(info?.ETag?.replace(/"/g, ''))
    expect(await pending(w.started)).toEqual([])
  })

  it('one write larger than several parts is cut into parts too', async () => {
    const w = watched()
    const key = s3.key('multi/one-write.bin')
    const data = randomBytes(2 * PART + 1)
    const written = await putBytes(w.ctx, key, data, { partSize: PART })
    expect(written.size).toBe(data.byteLength)
    expect(w.parts.map((p) => p.size).sort((a, b) => b - a)).toEqual([PART, PART, 1])
    expect((await getBytes(key)).equals(data)).toBe(true)
  })

  it('keeps at most queueSize parts uploading at once', async () => {
    const w = watched()
    const key = s3.key('multi/queue.bin')
    const data = randomBytes(3 * PART + 10)
    await putBytes(w.ctx, key, data, { partSize: PART, queueSize: 1 })
    expect(w.counts.UploadPartCommand).toBe(4)
    expect(w.maxPartsInFlight()).toBe(1)
    expect((await getBytes(key)).equals(data)).toBe(true)
  })
})

describe('conditional writes (through a proxy that enforces them)', () => {
  it("ifNoneMatch '*' creates an absent object and fails with 412 when it exists", async () => {
    const enforcing = await proxy({ enforceConditionalWrites: true })
    const w = watched({ endpoint: enforcing.endpoint })
    const key = s3.key('cond/none-match.txt')
    await putBytes(w.ctx, key, Buffer.from('first'), { ifNoneMatch: '*' })
    const error = await rejection(putBytes(w.ctx, key, Buffer.from('second'), { ifNoneMatch: '*' }))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 412, operation: 'PutObject', key })
    expect((await getBytes(key)).toString()).toBe('first')
    expect(enforcing.conflicts).toBe(1)
  })

  it("ifNoneMatch '*' on a multipart upload (a server that honours conditions on completions, told so) fails at the completion, and the upload is aborted", async () => {
    const enforcing = await proxy({ enforceConditionalWrites: true })
    const w = watched({ endpoint: enforcing.endpoint })
    // The proxy enforces conditions on CompleteMultipartUpload, whatever the server behind it does.
    rememberServerCapabilities(w.ctx.client, { conditionalComplete: true })
    const key = s3.key('cond/none-match-multi.bin')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'existing' }))
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART, ifNoneMatch: '*' })
    const error = await rejection(writeChunks(writer, randomBytes(PART + 1), MiB).then(() => writer.finish()))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 412, operation: 'CompleteMultipartUpload', key })
    expect((await getBytes(key)).toString()).toBe('existing')
    expect(w.started).toHaveLength(1)
    expect(w.counts.AbortMultipartUploadCommand).toBe(1)
    expect(await pending(w.started)).toEqual([])
  })

  it('conditional bytes larger than a part and within the single-PUT limit: one conditional PutObject, no multipart upload', async () => {
    const enforcing = await proxy({ enforceConditionalWrites: true })
    const w = watched({ endpoint: enforcing.endpoint })
    const key = s3.key('cond/one-put.bin')
    const data = randomBytes(PART + MiB)
    const written = await putBytes(w.ctx, key, data, { partSize: PART, ifNoneMatch: '*' })
    expect(written).toEqual({ key, etag: md5(data), size: data.byteLength })
    expect(w.counts).toEqual({ PutObjectCommand: 1 })
    const error = await rejection(putBytes(w.ctx, key, randomBytes(PART + MiB), { partSize: PART, ifNoneMatch: '*' }))
    expect(error).toMatchObject({ statusCode: 412, operation: 'PutObject', key })
    expect((await getBytes(key)).equals(data)).toBe(true)
  })

  it('ifMatch writes only over the given ETag', async () => {
    const enforcing = await proxy({ enforceConditionalWrites: true })
    const w = watched({ endpoint: enforcing.endpoint })
    const key = s3.key('cond/match.txt')
    const first = await putBytes(w.ctx, key, Buffer.from('v1'))
    const error = await rejection(putBytes(w.ctx, key, Buffer.from('v2'), { ifMatch: `"${md5(Buffer.from('other'))}"` }))
    expect(error).toMatchObject({ statusCode: 412 })
    expect((await getBytes(key)).toString()).toBe('v1')
    await putBytes(w.ctx, key, Buffer.from('v2'), { ifMatch: `"${first.etag}"` })
    expect((await getBytes(key)).toString()).toBe('v2')
  })
})

describe('conditional writes that would need an unguarded multipart completion', () => {
  it('streamed past a part on a server not known to honour conditions on completions: ConditionalWriteUnsupportedError, nothing sent', async () => {
    const w = watched()
    const key = s3.key('unguarded/unknown.bin')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART, ifNoneMatch: '*' })
    await writer.add(randomBytes(PART)) // a part's worth is held: nothing is sent yet
    const error = await rejection(writer.add(randomBytes(1)))
    expect(error).toBeInstanceOf(ConditionalWriteUnsupportedError)
    expect(error).toMatchObject({ key, capability: 'conditionalComplete', known: false })
    expect((error as Error).message).toContain('Raise partSize')
    expect(w.counts).toEqual({})
    expect(await head(key)).toBeUndefined()
    await expect(writer.finish()).rejects.toThrow(/already aborted/)
  })

  it.each(['fauxqs', 'ceph-rgw'] as const)(
    'on a server known to ignore them (%s’s measured capabilities, given to rememberServerCapabilities): refused, known, nothing sent',
    async (name) => {
      const w = watched()
      rememberServerCapabilities(w.ctx.client, MEASURED_CAPABILITIES[name])
      const key = s3.key(`unguarded/${name}.bin`)
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'existing' }))
      const etag = md5(Buffer.from('existing'))
      const writer = new ObjectWriter(w.ctx, key, { partSize: PART, ifMatch: etag })
      const error = await rejection(writer.add(randomBytes(2 * PART)))
      expect(error).toMatchObject({ key, capability: 'conditionalComplete', known: true })
      expect((error as Error).message).toContain('conditionalComplete: false, as stated with rememberServerCapabilities')
      expect(w.counts).toEqual({})
      expect((await getBytes(key)).toString()).toBe('existing')
    },
  )

  it('an unconditional write of the same size is a multipart upload as always', async () => {
    const w = watched()
    rememberServerCapabilities(w.ctx.client, MEASURED_CAPABILITIES['ceph-rgw'])
    const key = s3.key('unguarded/unconditional.bin')
    await putBytes(w.ctx, key, randomBytes(PART + 1), { partSize: PART })
    expect(w.counts.CreateMultipartUploadCommand).toBe(1)
  })
})

describe('abort and failures', () => {
  it('abort() after parts were uploaded aborts the upload: no object, no open upload', async () => {
    const w = watched()
    const key = s3.key('abort/a.bin')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART })
    await writer.add(randomBytes(2 * PART + 1))
    expect(writer.multipart).toBe(true)
    await writer.abort()
    expect(w.counts.UploadPartCommand).toBe(2)
    expect(w.counts.AbortMultipartUploadCommand).toBe(1)
    expect(w.started).toHaveLength(1)
    expect(await pending(w.started)).toEqual([])
    expect(await head(key)).toBeUndefined()
    await writer.abort() // safe twice
    expect(w.counts.AbortMultipartUploadCommand).toBe(1)
    await expect(writer.add(Buffer.from('x'))).rejects.toThrow()
    await expect(writer.finish()).rejects.toThrow()
    expect(await head(key)).toBeUndefined()
  })

  it('the pending-upload check sees an upload that was not aborted (so the checks above can fail)', async () => {
    const w = watched()
    const key = s3.key('abort/left-open.bin')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART })
    await writer.add(randomBytes(PART + 1))
    expect(await pending(w.started)).toEqual(w.started)
    await writer.abort()
    expect(await pending(w.started)).toEqual([])
  })

  it('a failing UploadPart makes finish() reject with S3RequestError, aborts the upload and publishes nothing', async () => {
    const failing = await proxy({
      intercept: (request) =>
        request.method === 'PUT' && new URL(request.url, 'http://x').searchParams.get('partNumber') === '2'
          ? { status: 500, code: 'InternalError' }
          : undefined,
    })
    const w = watched({ endpoint: failing.endpoint, maxAttempts: 1 })
    const key = s3.key('abort/failing-part.bin')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART })
    await writer.add(randomBytes(2 * PART + 1))
    const error = await rejection(writer.finish())
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 500, operation: 'UploadPart', key })
    expect(w.counts.CompleteMultipartUploadCommand).toBeUndefined()
    expect(w.counts.AbortMultipartUploadCommand).toBe(1)
    expect(w.started).toHaveLength(1)
    expect(await pending(w.started)).toEqual([])
    expect(await head(key)).toBeUndefined()
  })

  it('a failing PutObject rejects with S3RequestError and writes nothing', async () => {
    const failing = await proxy({ intercept: (request) => (request.method === 'PUT' ? { status: 403, code: 'AccessDenied' } : undefined) })
    const w = watched({ endpoint: failing.endpoint })
    const key = s3.key('abort/failing-put.txt')
    const error = await rejection(putBytes(w.ctx, key, Buffer.from('x')))
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 403, operation: 'PutObject', key })
    expect(await head(key)).toBeUndefined()
  })

  it('a failing CreateMultipartUpload rejects with S3RequestError', async () => {
    const failing = await proxy({
      intercept: (request) =>
        request.method === 'POST' && request.url.includes('uploads') ? { status: 403, code: 'AccessDenied' } : undefined,
    })
    const w = watched({ endpoint: failing.endpoint })
    const key = s3.key('abort/failing-create.bin')
    const writer = new ObjectWriter(w.ctx, key, { partSize: PART })
    const error = await rejection(
      (async () => {
        await writer.add(randomBytes(PART + 1))
        await writer.finish()
      })(),
    )
    expect(error).toBeInstanceOf(S3RequestError)
    expect(error).toMatchObject({ statusCode: 403, operation: 'CreateMultipartUpload', key })
    expect(await head(key)).toBeUndefined()
  })
})
