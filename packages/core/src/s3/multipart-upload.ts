/**
 * The requests that write one object, for the writers above them: a single PUT (`putSingle`), or a
 * multipart upload (`MultipartUpload`: parts sent a few at a time, then one completion, or an
 * abort). Conditional writes (`ifMatch`, `ifNoneMatch`) apply to the PUT or to the completion, in
 * the form the server honours (`conditional-write.ts`); a conditional multipart upload is only
 * started where the server is known to honour conditions on its completion, else refused with
 * `ConditionalWriteUnsupportedError` before anything is sent. An ETag missing or empty in the
 * answer (Ceph RGW 16's completions) is read with a HEAD. The context's write options
 * (`S3Context.writeOptions`: storage class, encryption, metadata, tags, …; see `write-options.ts`)
 * go with the PUT and with CreateMultipartUpload, its SSE-C key also with every UploadPart and the
 * completion. A
 * write the server carried out but whose answer was lost, so that the SDK's repeat of it was
 * refused (`NoSuchUpload` for a completion, 412 for a conditional write), is recognized by the
 * object's ETag and size and counts as done. `PartBuffer` cuts a stream of chunks into parts.
 *
 * @example
 * ```ts
 * import { MultipartUpload } from '@s3exchange/core/internals'
 *
 * const upload = new MultipartUpload(ctx, 'ds/big.bin', { queueSize: 4 })
 * await upload.upload(1, firstPart)   // waits while `queueSize` parts are in flight
 * await upload.upload(2, lastPart)
 * const etag = await upload.complete(firstPart.byteLength + lastPart.byteLength)
 * ```
 *
 * (Just over 300 lines: the single PUT and the multipart upload share the recognition of a write
 * whose answer was lost.)
 */
import { createHash } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { emitEvent } from '../format/events.js'
import type { ProgressOptions } from '../format/progress.js'
import { type ConditionHeaders, isConditional, refuseUnguardedCompletion, sendConditional } from './conditional-write.js'
import type { S3Context } from './context.js'
import { answeredEtag, headObject, mapWriteError, timesSent, unquoteEtag } from './requests.js'
import { objectWriteParams, sseCustomerParams, type WriteOptions, withWriteOptions } from './write-options.js'

/** Default part size: 8 MiB (S3's minimum is 5 MiB; some servers reject requests of 10 MiB and more). */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024
/** Default number of parts uploading at once. */
export const DEFAULT_QUEUE_SIZE = 4
/** S3's smallest allowed part (but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024
/** S3's most parts in one upload. */
const MAX_PARTS = 10_000

/** How an object is written: its parts, its Content-Type, conditions, and the write options (see `WriteOptions`). */
export interface UploadOptions extends WriteOptions, ProgressOptions {
  /** Bytes per multipart part (at least 5 MiB). Default 8 MiB. */
  partSize?: number
  /** Parts uploading at once. Default 4. */
  queueSize?: number
  /** Content-Type of the object. */
  contentType?: string
  /**
   * Only write if the object's current ETag is this one, quoted or bare (else HTTP 412; 404 on AWS
   * S3 when the object is gone). Sent in the form the server honours. A write larger than one part
   * with a condition needs a server known to honour conditions on multipart completions (else
   * `ConditionalWriteUnsupportedError`, nothing written).
   */
  ifMatch?: string
  /** `'*'`: only write if no object exists under the key (else HTTP 412). As `ifMatch` for writes larger than a part. */
  ifNoneMatch?: string
}

/** What was written. */
export interface WrittenObject {
  key: string
  /** ETag of the new object, unquoted. */
  etag: string | undefined
  /** Size in bytes. */
  size: number
}

/** The part size of these options: at least S3's minimum. */
export function partSizeOf(options: Pick<UploadOptions, 'partSize'>): number {
  return Math.max(MIN_PART_SIZE, options.partSize ?? DEFAULT_PART_SIZE)
}

/** Chunks held until a part's worth is there, then cut into parts. */
export class PartBuffer {
  #chunks: Uint8Array[] = []
  #size = 0

  /** Bytes held. */
  get size(): number {
    return this.#size
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    this.#chunks.push(chunk)
    this.#size += chunk.byteLength
  }

  /** The first `size` bytes held (all of them when fewer), removed from the buffer. */
  take(size: number = this.#size): Uint8Array {
    const all = concat(this.#chunks)
    const part = all.subarray(0, size)
    const rest = all.subarray(size)
    this.#chunks = rest.byteLength > 0 ? [rest] : []
    this.#size = rest.byteLength
    return part
  }

  clear(): void {
    this.#chunks = []
    this.#size = 0
  }
}

/** One multipart upload, created when its first part is sent; see the module comment. */
export class MultipartUpload {
  readonly key: string
  readonly #ctx: S3Context
  readonly #options: UploadOptions
  readonly #queueSize: number
  readonly #parts: { PartNumber: number; ETag: string | undefined }[] = []
  readonly #inFlight = new Set<Promise<void>>()
  readonly #onPartUploaded: ((bytes: number) => void) | undefined
  #creating: Promise<string> | undefined
  #state: 'open' | 'completed' | 'aborted' = 'open'
  #failure: unknown

  /**
   * `onPartUploaded` is called with each part's size once the part is uploaded (progress); what it
   * throws fails the upload as a failed part would (the writer aborts it).
   */
  constructor(ctx: S3Context, key: string, options: UploadOptions = {}, onPartUploaded?: (bytes: number) => void) {
    this.#ctx = withWriteOptions(ctx, options)
    this.key = key
    this.#options = options
    this.#queueSize = Math.max(1, options.queueSize ?? DEFAULT_QUEUE_SIZE)
    this.#onPartUploaded = onPartUploaded
  }

  /** True once the upload was created (and so must be completed or aborted). */
  get started(): boolean {
    return this.#creating !== undefined
  }

  /**
   * Sends one part, after waiting while `queueSize` parts are in flight; resolves once it is under
   * way. A part that failed before makes this throw its error.
   */
  async upload(partNumber: number, body: Uint8Array): Promise<void> {
    while (this.#inFlight.size >= this.#queueSize) await Promise.race(this.#inFlight)
    if (this.#failure) throw this.#failure
    if (partNumber > MAX_PARTS) throw new Error(`${this.key}: more than ${MAX_PARTS} parts; raise partSize`)
    const uploadId = await this.#create()
    const encryption = sseCustomerParams(this.#ctx)
    const task = (async () => {
      try {
        const response = await this.#ctx.client.send(
          new UploadPartCommand({
            Bucket: this.#ctx.bucket,
            Key: this.key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
            ...encryption,
          }),
          { abortSignal: this.#ctx.signal },
        )
        this.#parts.push({ PartNumber: partNumber, ETag: response.ETag })
      } catch (error) {
        this.#failure ??= mapWriteError('UploadPart', this.key, error, this.#ctx.signal)
        return
      }
      try {
        this.#onPartUploaded?.(body.byteLength)
      } catch (error) {
        this.#failure ??= error
      }
    })()
    this.#inFlight.add(task)
    void task.finally(() => this.#inFlight.delete(task))
  }

  /** Waits for the parts in flight and completes the upload; `size` is the object's, for the lost-answer check. */
  async complete(size: number): Promise<string | undefined> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight)
    if (this.#failure) throw this.#failure
    const uploadId = await this.#create()
    const parts = [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber)
    const encryption = sseCustomerParams(this.#ctx)
    try {
      const response = await sendConditional(this.#ctx, this.key, this.#options, 'CompleteMultipartUpload', (conditions) =>
        this.#ctx.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#ctx.bucket,
            Key: this.key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            ...conditions,
            ...encryption,
          }),
          { abortSignal: this.#ctx.signal },
        ),
      )
      this.#state = 'completed'
      return answeredEtag(response.ETag) ?? (await etagByHead(this.#ctx, this.key))
    } catch (error) {
      const landed = await landedBefore(this.#ctx, this.key, error, this.#options, () => multipartEtag(parts), size)
      if (landed !== undefined) {
        this.#state = 'completed'
        return landed
      }
      throw mapWriteError('CompleteMultipartUpload', this.key, error, this.#ctx.signal)
    }
  }

  /** Aborts the upload, if it was created and not completed. Safe to call twice. */
  async abort(): Promise<void> {
    this.#failure ??= new Error('aborted')
    await Promise.allSettled(this.#inFlight)
    const creating = this.#creating
    if (creating === undefined || this.#state !== 'open') return
    this.#state = 'aborted'
    let uploadId: string
    try {
      uploadId = await creating
    } catch {
      return
    }
    try {
      await this.#ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.key, UploadId: uploadId }))
    } catch {
      // Best effort: a bucket lifecycle rule is the backstop for uploads that cannot be aborted.
    }
  }

  #create(): Promise<string> {
    this.#creating ??= (async () => {
      const params = objectWriteParams(this.#ctx)
      try {
        refuseUnguardedCompletion(this.#ctx, this.key, this.#options)
        const response = await this.#ctx.client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.#ctx.bucket,
            Key: this.key,
            ContentType: this.#options.contentType,
            ...params,
          }),
          { abortSignal: this.#ctx.signal },
        )
        if (!response.UploadId) throw new Error('CreateMultipartUpload returned no UploadId')
        return response.UploadId
      } catch (error) {
        throw mapWriteError('CreateMultipartUpload', this.key, error, this.#ctx.signal)
      }
    })()
    return this.#creating
  }
}

/** Writes `body` to `key` with one PutObject; resolves to its ETag. See the module comment. */
export async function putSingle(ctx: S3Context, key: string, body: Uint8Array, options: UploadOptions = {}): Promise<string | undefined> {
  ctx = withWriteOptions(ctx, options)
  const params = objectWriteParams(ctx)
  let etag: string | undefined
  const send = (conditions: ConditionHeaders) =>
    ctx.client.send(
      new PutObjectCommand({
        Bucket: ctx.bucket,
        Key: key,
        Body: body,
        ContentLength: body.byteLength,
        ContentType: options.contentType,
        ...conditions,
        ...params,
      }),
      { abortSignal: ctx.signal },
    )
  try {
    const response = isConditional(options) ? await sendConditional(ctx, key, options, 'PutObject', send) : await send({})
    etag = answeredEtag(response.ETag)
  } catch (error) {
    const landed = await landedBefore(ctx, key, error, options, () => createHash('md5').update(body).digest('hex'), body.byteLength)
    if (landed !== undefined) return landed
    throw mapWriteError('PutObject', key, error, ctx.signal)
  }
  return etag ?? (await etagByHead(ctx, key))
}

/** The object's ETag from a HEAD, for a write whose answer had none; undefined when the HEAD has none either. */
async function etagByHead(ctx: S3Context, key: string): Promise<string | undefined> {
  emitEvent(ctx, { type: 'fallback', key, fallback: 'etag-by-head', reason: 'the answer to the write carried no ETag' })
  return answeredEtag((await headObject(ctx, key)).ETag)
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
async function landedBefore(
  ctx: S3Context,
  key: string,
  error: unknown,
  options: UploadOptions,
  expectedEtag: () => string | undefined,
  size: number,
): Promise<string | undefined> {
  const detail = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined
  if (timesSent(error) < 2) return undefined
  const refusedRepeat = detail?.name === 'NoSuchUpload' || (isConditional(options) && detail?.$metadata?.httpStatusCode === 412)
  if (!refusedRepeat || ctx.signal?.aborted) return undefined
  const expected = expectedEtag()
  if (expected === undefined) return undefined
  try {
    const head = await headObject(ctx, key)
    return answeredEtag(head.ETag) === expected && head.ContentLength === size ? expected : undefined
  } catch {
    return undefined // the error that brought us here is the one to report
  }
}

/** The ETag S3 gives a multipart upload of these parts: MD5 of their binary MD5s, `-` their count. */
function multipartEtag(parts: { ETag?: string | undefined }[]): string | undefined {
  const digests = parts.map((part) => Buffer.from(unquoteEtag(part.ETag) ?? '', 'hex'))
  if (digests.some((digest) => digest.byteLength !== 16)) return undefined
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  return Buffer.concat(chunks)
}
