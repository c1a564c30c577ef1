/**
 * `ObjectWriter`: streams bytes into one S3 object. Up to `partSize` bytes it is a single PUT;
 * beyond, a multipart upload whose parts are sent as they fill, a few at a time, so memory stays at
 * about `partSize × (queueSize + 1)` whatever the object size. Nothing is visible under the key
 * until `finish()` succeeds; on any failure, or `abort()`, the multipart upload is aborted.
 * Conditional writes (`ifMatch`, `ifNoneMatch`) apply to the PUT or to the multipart completion.
 * A write the server carried out but whose answer was lost, so that the SDK's repeat of it was
 * refused (`NoSuchUpload` for a completion, 412 for a conditional write), is recognized by the
 * object's ETag and size and counts as done.
 *
 * With `reserveFirstPart`, part 1 is sent last, as `prefix + the first 5 MiB written`, where
 * `prefix` is given to `finish()`: that is how a shard puts its internal manifest, known only at the
 * end, before members it has already uploaded.
 *
 * @example
 * ```ts
 * import { ObjectWriter } from '@s3exchange/core'
 *
 * const writer = new ObjectWriter(ctx, 'exports/big.jsonl', { contentType: 'application/x-ndjson' })
 * for (const line of lines) await writer.write(Buffer.from(line + '\n'))
 * const { etag, size } = await writer.finish()
 * ```
 */
import { createHash } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import type { S3Context } from './context.js'
import { headObject, mapWriteError, timesSent, unquoteEtag } from './requests.js'

/** Default part size: 8 MiB (S3's minimum is 5 MiB; some servers reject requests of 10 MiB and more). */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024
/** Default number of parts uploading at once. */
export const DEFAULT_QUEUE_SIZE = 4
const MAX_PARTS = 10_000
/** S3's smallest allowed part (but the last). */
const MIN_PART_SIZE = 5 * 1024 * 1024

/** Options for {@link ObjectWriter}. */
export interface ObjectWriterOptions {
  /** Bytes per multipart part (at least 5 MiB). Default 8 MiB. */
  partSize?: number
  /** Parts uploading at once. Default 4. */
  queueSize?: number
  /** Content-Type of the object. */
  contentType?: string
  /** Only write if the object's current ETag is this one (else HTTP 412). */
  ifMatch?: string
  /** `'*'`: only write if no object exists under the key (else HTTP 412). */
  ifNoneMatch?: string
  /** Send part 1 last, with a prefix given to `finish()`. */
  reserveFirstPart?: boolean
}

/** What was written. */
export interface WrittenObject {
  key: string
  /** ETag of the new object, unquoted. */
  etag: string | undefined
  /** Size in bytes (prefix included). */
  size: number
}

/** Streams bytes into one object; see the module comment. */
export class ObjectWriter {
  readonly key: string
  readonly #ctx: S3Context
  readonly #partSize: number
  readonly #queueSize: number
  readonly #options: ObjectWriterOptions
  #buffer: Uint8Array[] = []
  #buffered = 0
  #written = 0
  #head: Uint8Array | undefined
  #uploadId: string | undefined
  #creating: Promise<string> | undefined
  #nextPart: number
  readonly #parts: { PartNumber: number; ETag: string | undefined }[] = []
  readonly #inFlight = new Set<Promise<void>>()
  #failure: unknown
  #done = false

  constructor(ctx: S3Context, key: string, options: ObjectWriterOptions = {}) {
    this.#ctx = ctx
    this.key = key
    this.#options = options
    this.#partSize = Math.max(MIN_PART_SIZE, options.partSize ?? DEFAULT_PART_SIZE)
    this.#queueSize = Math.max(1, options.queueSize ?? DEFAULT_QUEUE_SIZE)
    this.#nextPart = options.reserveFirstPart ? 2 : 1
  }

  /** Bytes written so far (not counting a reserved prefix). */
  get size(): number {
    return this.#written
  }

  /** True once a multipart upload has been started (and so must be completed or aborted). */
  get multipart(): boolean {
    return this.#creating !== undefined
  }

  /** Adds bytes; resolves when they are accepted (waits while too many parts are uploading). */
  async write(chunk: Uint8Array): Promise<void> {
    this.#check()
    if (chunk.byteLength === 0) return
    this.#buffer.push(chunk)
    this.#buffered += chunk.byteLength
    this.#written += chunk.byteLength
    // Only cut a part when more data follows it, so that a small object stays a single PUT.
    for (let size = this.#nextCut(); this.#buffered > size; size = this.#nextCut()) await this.#emit(this.#take(size))
  }

  /**
   * Publishes the object: a single PUT, or the last parts and the completion. With
   * `reserveFirstPart`, `prefix` goes before everything written.
   */
  async finish(prefix: Uint8Array = new Uint8Array(0)): Promise<WrittenObject> {
    this.#check()
    this.#done = true
    try {
      const size = prefix.byteLength + this.#written
      if (!this.multipart && this.#head === undefined) {
        return { key: this.key, etag: await this.#putSingle(concat([prefix, ...this.#buffer])), size }
      }
      if (this.#buffered > 0) await this.#emit(this.#take(this.#buffered))
      if (this.#options.reserveFirstPart) await this.#upload(1, concat([prefix, this.#head ?? new Uint8Array(0)]))
      await this.#drain()
      if (this.#failure) throw this.#failure
      return { key: this.key, etag: await this.#complete(size), size }
    } catch (error) {
      await this.abort()
      throw error
    }
  }

  /** Abandons the object: aborts the multipart upload, if one was started. Safe to call twice. */
  async abort(): Promise<void> {
    this.#done = true
    this.#failure ??= new Error('aborted')
    this.#buffer = []
    this.#head = undefined
    await Promise.allSettled(this.#inFlight)
    const creating = this.#creating
    if (creating === undefined || this.#uploadId === 'aborted') return
    let uploadId: string
    try {
      uploadId = await creating
    } catch {
      return
    }
    this.#uploadId = 'aborted'
    try {
      await this.#ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.key, UploadId: uploadId }))
    } catch {
      // Best effort: a bucket lifecycle rule is the backstop for uploads that cannot be aborted.
    }
  }

  #check(): void {
    if (this.#failure) throw this.#failure
    if (this.#done) throw new Error(`ObjectWriter for ${this.key} is already finished`)
  }

  /**
   * Bytes in the next part. With `reserveFirstPart`, what is held back for part 1 is only S3's
   * minimum part size, so that part 1 (prefix + held-back bytes) stays small when the prefix is large.
   */
  #nextCut(): number {
    return this.#options.reserveFirstPart && this.#head === undefined ? MIN_PART_SIZE : this.#partSize
  }

  #take(size: number): Uint8Array {
    const all = concat(this.#buffer)
    const part = all.subarray(0, size)
    const rest = all.subarray(size)
    this.#buffer = rest.byteLength > 0 ? [rest] : []
    this.#buffered = rest.byteLength
    return part
  }

  async #emit(part: Uint8Array): Promise<void> {
    if (this.#options.reserveFirstPart && this.#head === undefined) {
      this.#head = part
      return
    }
    while (this.#inFlight.size >= this.#queueSize) await Promise.race(this.#inFlight)
    if (this.#failure) throw this.#failure
    const partNumber = this.#nextPart++
    if (partNumber > MAX_PARTS) throw new Error(`${this.key}: more than ${MAX_PARTS} parts; raise partSize`)
    await this.#upload(partNumber, part)
  }

  async #upload(partNumber: number, body: Uint8Array): Promise<void> {
    const uploadId = await this.#createUpload()
    const task = (async () => {
      try {
        const response = await this.#ctx.client.send(
          new UploadPartCommand({ Bucket: this.#ctx.bucket, Key: this.key, UploadId: uploadId, PartNumber: partNumber, Body: body }),
          { abortSignal: this.#ctx.signal },
        )
        this.#parts.push({ PartNumber: partNumber, ETag: response.ETag })
      } catch (error) {
        this.#failure ??= mapWriteError('UploadPart', this.key, error, this.#ctx.signal)
      }
    })()
    this.#inFlight.add(task)
    void task.finally(() => this.#inFlight.delete(task))
  }

  #createUpload(): Promise<string> {
    this.#creating ??= (async () => {
      try {
        const response = await this.#ctx.client.send(
          new CreateMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.key, ContentType: this.#options.contentType }),
          { abortSignal: this.#ctx.signal },
        )
        if (!response.UploadId) throw new Error('CreateMultipartUpload returned no UploadId')
        this.#uploadId = response.UploadId
        return response.UploadId
      } catch (error) {
        throw mapWriteError('CreateMultipartUpload', this.key, error, this.#ctx.signal)
      }
    })()
    return this.#creating
  }

  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight)
  }

  async #putSingle(body: Uint8Array): Promise<string | undefined> {
    let etag: string | undefined
    try {
      const response = await this.#ctx.client.send(
        new PutObjectCommand({
          Bucket: this.#ctx.bucket,
          Key: this.key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: this.#options.contentType,
          IfMatch: this.#options.ifMatch,
          IfNoneMatch: this.#options.ifNoneMatch,
        }),
        { abortSignal: this.#ctx.signal },
      )
      etag = unquoteEtag(response.ETag)
    } catch (error) {
      const landed = await this.#landedBefore(error, () => createHash('md5').update(body).digest('hex'), body.byteLength)
      if (landed !== undefined) return landed
      throw mapWriteError('PutObject', this.key, error, this.#ctx.signal)
    }
    return etag ?? unquoteEtag((await headObject(this.#ctx, this.key)).ETag)
  }

  async #complete(size: number): Promise<string | undefined> {
    const uploadId = await this.#createUpload()
    const parts = [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber)
    try {
      const response = await this.#ctx.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#ctx.bucket,
          Key: this.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfMatch: this.#options.ifMatch,
          IfNoneMatch: this.#options.ifNoneMatch,
        }),
        { abortSignal: this.#ctx.signal },
      )
      this.#uploadId = 'completed'
      return unquoteEtag(response.ETag) ?? unquoteEtag((await headObject(this.#ctx, this.key)).ETag)
    } catch (error) {
      const landed = await this.#landedBefore(error, () => multipartEtag(parts), size)
      if (landed !== undefined) {
        this.#uploadId = 'completed'
        return landed
      }
      throw mapWriteError('CompleteMultipartUpload', this.key, error, this.#ctx.signal)
    }
  }

  /**
   * A write sent more than once whose repeat was refused although the first may have been carried
   * out, its answer lost: a completion answered `NoSuchUpload` (AWS S3 answers a repeated completion
   * with success; MinIO, fauxqs and others with NoSuchUpload), or a conditional write answered 412
   * because the first one already changed the object. If the object under the key now is this
   * write (its ETag, `expectedEtag()`, and its size), the write is done: resolves to that ETag.
   * Otherwise (or when the server's ETags are not MD5-based, as with SSE-KMS) undefined, and the
   * error stands.
   */
  async #landedBefore(error: unknown, expectedEtag: () => string | undefined, size: number): Promise<string | undefined> {
    const detail = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined
    if (timesSent(error) < 2) return undefined
    const conditional = this.#options.ifMatch !== undefined || this.#options.ifNoneMatch !== undefined
    const refusedRepeat = detail?.name === 'NoSuchUpload' || (conditional && detail?.$metadata?.httpStatusCode === 412)
    if (!refusedRepeat || this.#ctx.signal?.aborted) return undefined
    const expected = expectedEtag()
    if (expected === undefined) return undefined
    try {
      const head = await headObject(this.#ctx, this.key)
      return unquoteEtag(head.ETag) === expected && head.ContentLength === size ? expected : undefined
    } catch {
      return undefined // the error that brought us here is the one to report
    }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  return Buffer.concat(chunks)
}

/** Writes bytes to `key` in one go (multipart when larger than a part). */
export async function putBytes(ctx: S3Context, key: string, body: Uint8Array, options: ObjectWriterOptions = {}): Promise<WrittenObject> {
  const writer = new ObjectWriter(ctx, key, options)
  await writer.write(body)
  return writer.finish()
}

/** The ETag S3 gives a multipart upload of these parts: MD5 of their binary MD5s, `-` their count. */
function multipartEtag(parts: { ETag?: string | undefined }[]): string | undefined {
  const digests = parts.map((part) => Buffer.from(unquoteEtag(part.ETag) ?? '', 'hex'))
  if (digests.some((digest) => digest.byteLength !== 16)) return undefined
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`
}
