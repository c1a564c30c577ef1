/**
 * `HeadLastWriter`: streams an object whose first bytes, its *head*, are known only at the end:
 * a shard's internal manifest, which must come first in the archive but lists the members written
 * after it. The body streams into parts 2, 3, … of a multipart upload as it comes, the first
 * 5 MiB (S3's smallest part) held back; `finish(head)` sends part 1 last, as the head followed by
 * those held-back bytes, and completes the upload. A body smaller than that is one PUT of head and
 * body. Memory stays at a few parts whatever the object size, and nothing touches the disk.
 *
 * @example
 * ```ts
 * import { HeadLastWriter } from '@s3exchange/core/internals'
 *
 * const writer = new HeadLastWriter(ctx, 'ds/shards/shard-00000.tar')
 * for (const chunk of members) await writer.add(chunk)
 * await writer.finish(manifestMember) // the object is manifestMember followed by every chunk
 * ```
 */
import type { S3Context } from '../s3/context.js'
import {
  MIN_PART_SIZE,
  MultipartUpload,
  PartBuffer,
  partSizeOf,
  putSingle,
  type UploadOptions,
  type WrittenObject,
} from '../s3/multipart-upload.js'

/** Streams an object whose head is given at the end; see the module comment. */
export class HeadLastWriter {
  readonly key: string
  readonly #ctx: S3Context
  readonly #options: UploadOptions
  readonly #partSize: number
  readonly #buffer = new PartBuffer()
  readonly #upload: MultipartUpload
  /** The first bytes of the body, held back for part 1. */
  #held: Uint8Array | undefined
  #nextPart = 2
  #written = 0
  #state: 'open' | 'finished' | 'aborted' = 'open'

  constructor(ctx: S3Context, key: string, options: UploadOptions = {}) {
    this.#ctx = ctx
    this.key = key
    this.#options = options
    this.#partSize = partSizeOf(options)
    this.#upload = new MultipartUpload(ctx, key, options)
  }

  /** Bytes of body written so far (the head not counted). */
  get size(): number {
    return this.#written
  }

  /** Adds body bytes; resolves when they are accepted (waits while too many parts are uploading). */
  async add(chunk: Uint8Array): Promise<void> {
    this.#check()
    this.#buffer.push(chunk)
    this.#written += chunk.byteLength
    try {
      // Only cut a part when more data follows it. What is held back for part 1 is only S3's
      // minimum part size, so that part 1 (head + held-back bytes) stays small when the head is large.
      for (let cut = this.#nextCut(); this.#buffer.size > cut; cut = this.#nextCut()) await this.#emit(this.#buffer.take(cut))
    } catch (error) {
      await this.abort()
      throw error
    }
  }

  /** Publishes the object: `head`, then every body byte. */
  async finish(head: Uint8Array): Promise<WrittenObject> {
    this.#check()
    this.#state = 'finished'
    const size = head.byteLength + this.#written
    try {
      if (!this.#upload.started && this.#held === undefined) {
        return {
          key: this.key,
          etag: await putSingle(this.#ctx, this.key, Buffer.concat([head, this.#buffer.take()]), this.#options),
          size,
        }
      }
      if (this.#buffer.size > 0) await this.#emit(this.#buffer.take())
      await this.#upload.upload(1, Buffer.concat([head, this.#held ?? new Uint8Array(0)]))
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
    this.#held = undefined
    await this.#upload.abort()
  }

  #nextCut(): number {
    return this.#held === undefined ? MIN_PART_SIZE : this.#partSize
  }

  async #emit(part: Uint8Array): Promise<void> {
    if (this.#held === undefined) this.#held = part
    else await this.#upload.upload(this.#nextPart++, part)
  }

  #check(): void {
    if (this.#state !== 'open') throw new Error(`HeadLastWriter for ${this.key} is ${this.#state}`)
  }
}
