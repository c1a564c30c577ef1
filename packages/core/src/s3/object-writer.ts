/**
 * `ObjectWriter`: streams bytes into one S3 object. Up to `partSize` bytes it is a single PUT;
 * beyond, a multipart upload whose parts are sent as they fill, a few at a time, so memory stays at
 * about `partSize × (queueSize + 1)` whatever the object size. Nothing is visible under the key
 * until `finish()` succeeds; on any failure, or `abort()`, the multipart upload is aborted.
 * Conditional writes and writes whose answer was lost: see `multipart-upload.ts`.
 *
 * @example
 * ```ts
 * import { ObjectWriter } from '@s3exchange/core/internals'
 *
 * const writer = new ObjectWriter(ctx, 'exports/big.jsonl', { contentType: 'application/x-ndjson' })
 * for (const line of lines) await writer.add(Buffer.from(line + '\n'))
 * const { etag, size } = await writer.finish()
 * ```
 */
import type { Writer } from '../format/writer.js'
import type { S3Context } from './context.js'
import { MultipartUpload, PartBuffer, partSizeOf, putSingle, type UploadOptions, type WrittenObject } from './multipart-upload.js'

/** Streams bytes into one object; see the module comment. */
export class ObjectWriter implements Writer<Uint8Array, WrittenObject> {
  readonly key: string
  readonly #ctx: S3Context
  readonly #options: UploadOptions
  readonly #partSize: number
  readonly #buffer = new PartBuffer()
  readonly #upload: MultipartUpload
  #nextPart = 1
  #written = 0
  #state: 'open' | 'finished' | 'aborted' = 'open'

  constructor(ctx: S3Context, key: string, options: UploadOptions = {}) {
    this.#ctx = ctx
    this.key = key
    this.#options = options
    this.#partSize = partSizeOf(options)
    this.#upload = new MultipartUpload(ctx, key, options)
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#written
  }

  /** True once a multipart upload has been started (and so must be completed or aborted). */
  get multipart(): boolean {
    return this.#upload.started
  }

  /** Adds bytes; resolves when they are accepted (waits while too many parts are uploading). */
  async add(chunk: Uint8Array): Promise<void> {
    this.#check()
    this.#buffer.push(chunk)
    this.#written += chunk.byteLength
    try {
      // Only cut a part when more data follows it, so that a small object stays a single PUT.
      while (this.#buffer.size > this.#partSize) await this.#upload.upload(this.#nextPart++, this.#buffer.take(this.#partSize))
    } catch (error) {
      await this.abort()
      throw error
    }
  }

  /** Publishes the object: a single PUT, or the last part and the completion. */
  async finish(): Promise<WrittenObject> {
    this.#check()
    this.#state = 'finished'
    const size = this.#written
    try {
      if (!this.multipart) return { key: this.key, etag: await putSingle(this.#ctx, this.key, this.#buffer.take(), this.#options), size }
      if (this.#buffer.size > 0) await this.#upload.upload(this.#nextPart++, this.#buffer.take())
      return { key: this.key, etag: await this.#upload.complete(size), size }
    } catch (error) {
      await this.#abortUpload()
      throw error
    }
  }

  /** Abandons the object: aborts the multipart upload, if one was started. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.#state === 'open') this.#state = 'aborted'
    await this.#abortUpload()
  }

  async #abortUpload(): Promise<void> {
    this.#buffer.clear()
    await this.#upload.abort()
  }

  #check(): void {
    if (this.#state === 'aborted') throw new Error(`ObjectWriter for ${this.key} was aborted`)
    if (this.#state === 'finished') throw new Error(`ObjectWriter for ${this.key} is already finished`)
  }
}

/** Writes bytes to `key` in one go (multipart when larger than a part). */
export async function putBytes(ctx: S3Context, key: string, body: Uint8Array, options: UploadOptions = {}): Promise<WrittenObject> {
  const writer = new ObjectWriter(ctx, key, options)
  await writer.add(body)
  return writer.finish()
}
