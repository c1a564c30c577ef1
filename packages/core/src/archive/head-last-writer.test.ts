/**
 * HeadLastWriter against a real (local) S3: the head given to finish() comes first in the object,
 * in one PUT when small, else as part 1 of the multipart upload, sent last (the head followed by
 * the first 5 MiB of the body), and nothing is left open.
 */
import { randomBytes } from 'node:crypto'
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { countRequests, pendingMultipartUploads, trackMultipartUploads } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, describe, expect, it } from 'vitest'
import { HeadLastWriter } from './head-last-writer.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const PART = 5 * MiB
const clients: S3Client[] = []
afterAll(() => {
  for (const client of clients) client.destroy()
})

/** A new client whose requests are counted, whose uploads are tracked and whose UploadPart sizes are recorded in order. */
function watched() {
  const client = s3.s3.createClient()
  clients.push(client)
  const parts: { partNumber: number; size: number }[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') {
        const input = args.input as { PartNumber: number; Body: Uint8Array }
        parts.push({ partNumber: input.PartNumber, size: input.Body.byteLength })
      }
      return next(args)
    },
    { step: 'initialize', name: 'record-parts' },
  )
  return { ctx: { client, bucket: s3.bucket }, counts: countRequests(client), started: trackMultipartUploads(client), parts }
}

async function getBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

describe('HeadLastWriter', () => {
  it('small: the head given to finish() comes first, in one PUT', async () => {
    const w = watched()
    const key = s3.key('head-last/small.bin')
    const writer = new HeadLastWriter(w.ctx, key, { partSize: PART })
    const data = randomBytes(1000)
    const head = randomBytes(300)
    await writer.add(data)
    const written = await writer.finish(head)
    expect(written.size).toBe(1300)
    expect(w.counts).toEqual({ PutObjectCommand: 1 })
    expect((await getBytes(key)).equals(Buffer.concat([head, data]))).toBe(true)
  })

  it('multipart: part 1 is sent last, as the head + the first partSize bytes', async () => {
    const w = watched()
    const key = s3.key('head-last/multi.bin')
    const writer = new HeadLastWriter(w.ctx, key, { partSize: PART })
    const data = randomBytes(2 * PART + 999)
    const head = randomBytes(4096)
    for (let i = 0; i < data.byteLength; i += MiB) await writer.add(data.subarray(i, i + MiB))
    const written = await writer.finish(head)
    expect(written.size).toBe(head.byteLength + data.byteLength)
    expect(w.parts.at(-1)).toEqual({ partNumber: 1, size: head.byteLength + PART })
    expect([...w.parts].sort((a, b) => a.partNumber - b.partNumber).map((p) => p.size)).toEqual([head.byteLength + PART, PART, 999])
    const stored = await getBytes(key)
    expect(stored.byteLength).toBe(written.size)
    expect(stored.equals(Buffer.concat([head, data]))).toBe(true)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
  })

  it('multipart with less than two parts of data: the held-back part still comes after the head', async () => {
    const w = watched()
    const key = s3.key('head-last/between.bin')
    const writer = new HeadLastWriter(w.ctx, key, { partSize: PART })
    const data = randomBytes(PART + 10)
    const head = Buffer.from('PREFIX')
    await writer.add(data)
    await writer.finish(head)
    expect(w.counts.UploadPartCommand).toBe(2)
    expect((await getBytes(key)).equals(Buffer.concat([head, data]))).toBe(true)
  })

  it('abort() after parts were uploaded leaves nothing: no object, no open upload; later calls reject', async () => {
    const w = watched()
    const key = s3.key('head-last/aborted.bin')
    const writer = new HeadLastWriter(w.ctx, key, { partSize: PART })
    await writer.add(randomBytes(2 * PART + 1))
    expect(w.started).toHaveLength(1)
    await writer.abort()
    expect(w.counts.AbortMultipartUploadCommand).toBe(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
    await expect(writer.add(Buffer.from('x'))).rejects.toThrow(/aborted/)
    await expect(writer.finish(Buffer.from('x'))).rejects.toThrow(/aborted/)
  })
})
