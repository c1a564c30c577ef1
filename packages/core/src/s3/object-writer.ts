/**
 * `ObjectWriter`: streams bytes into one S3 object. Up to `partSize` bytes it is a single PUT;
 * beyond, a multipart upload whose parts are sent as they fill, a few at a time, so memory stays at
 * about `partSize × (queueSize + 1)` whatever the object size. Nothing is visible under the key
 * until `finish()` succeeds; on any failure, or `abort()`, the multipart upload is aborted.
 * Conditional writes and writes whose answer was lost: see `multipart-upload.ts`. `PartWriter` is
 * what it shares with writers that lay their parts out otherwise (`HeadLastWriter`).
 *
 * `putBytes` writes bytes already in memory. With a condition (`ifMatch`, `ifNoneMatch`) it sends
 * them in one conditional PutObject whatever `partSize` says, up to the largest single PUT the
 * server takes (5 GiB − 5 MiB until the server refuses one as too large, which is remembered per
 * client), because a single PUT is the one write whose condition every server that has conditions
 * keeps; beyond that it is a conditional multipart upload, sent only where the server is known to
 * honour conditions on the completion (else `ConditionalWriteUnsupportedError`, nothing written).
 * A root manifest is committed this way.
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
import { ConfigurationError, S3RequestError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import { checkOptions } from '../format/options.js'
import { type ProgressCounter, progressCounter } from '../format/progress.js'
import type { Writer } from '../format/writer.js'
import { isConditional } from './conditional-write.js'
import type { S3Context } from './context.js'
import { MultipartUpload, PartBuffer, partSizeOf, putSingle, type UploadOptions, type WrittenObject } from './multipart-upload.js'
import { learnSinglePutRefused, singlePutFits } from './server-knowledge.js'
import { objectWriteParams, withWriteOptions } from './write-options.js'

/**
 * Bytes buffered and cut into the parts of one upload as they come, the writer's state, and
 * abort: what every writer of one object shares. A subclass says where each part goes (`emit`),
 * how big the next one is (`nextCut`), and how the object is published (`finishWith`).
 */
export abstract class PartWriter {
  readonly key: string
  protected readonly ctx: S3Context
  protected readonly options: UploadOptions
  protected readonly partSize: number
  protected readonly buffer = new PartBuffer()
  protected readonly upload: MultipartUpload
  /** The call's progress (see `format/progress.ts`), when it has a callback. */
  protected readonly progress: ProgressCounter | undefined
  /** Whether this writer's object is the call's one object (it counts it), or one of a call's many (the caller does). */
  readonly #countsObject: boolean
  #written = 0
  #uploaded = 0
  #state: 'open' | 'finished' | 'aborted' = 'open'

  /**
   * Throws `ConfigurationError` for bad write options (`options` over the context's), before
   * anything is sent. Progress: `options.onProgress` is told of each part uploaded and of the
   * object once written; a writer that is part of a larger call is given that call's `progress`
   * instead, and adds its bytes to it (and counts its object if `countsObject`, else the caller does).
   */
  constructor(ctx: S3Context, key: string, options: UploadOptions = {}, progress?: ProgressCounter, countsObject = progress === undefined) {
    checkOptions(new.target.name, options)
    if (typeof key !== 'string' || key === '')
      throw new ConfigurationError(`${new.target.name}: the key is empty`, { call: new.target.name })
    this.ctx = withWriteOptions(ctx, options)
    objectWriteParams(this.ctx)
    this.key = key
    this.options = options
    this.partSize = partSizeOf(options)
    this.#countsObject = countsObject
    this.progress = progress ?? progressCounter(options, { totalObjects: 1 })
    const counter = this.progress
    this.upload = new MultipartUpload(
      ctx,
      key,
      options,
      counter &&
        ((bytes) => {
          this.#uploaded += bytes
          counter.addBytes(bytes, key)
        }),
    )
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#written
  }

  /** True once a multipart upload has been started (and so must be completed or aborted). */
  get multipart(): boolean {
    return this.upload.started
  }

  /** Adds bytes; resolves when they are accepted (waits while too many parts are uploading). */
  async add(chunk: Uint8Array): Promise<void> {
    this.#check()
    this.buffer.push(chunk)
    this.#written += chunk.byteLength
    try {
      // Only cut a part when more data follows it, so that a small object stays a single PUT.
      for (let cut = this.nextCut(); this.buffer.size > cut; cut = this.nextCut()) await this.emit(this.buffer.take(cut))
    } catch (error) {
      await this.abort()
      throw error
    }
  }

  /** Abandons the object: aborts the multipart upload, if one was started. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.#state === 'open') this.#state = 'aborted'
    await this.#abortUpload()
  }

  /** Bytes in the next part. */
  protected nextCut(): number {
    return this.partSize
  }

  /** Sends one part cut from the buffer (or holds it back). */
  protected abstract emit(part: Uint8Array): Promise<void>

  /** Drops what is held in memory, when the writer is aborted. */
  protected release(): void {
    this.buffer.clear()
  }

  /** Finishes the writer with `publish` (given the bytes written); a failure aborts the upload. */
  protected async finishWith(publish: (written: number) => Promise<WrittenObject>): Promise<WrittenObject> {
    this.#check()
    this.#state = 'finished'
    let written: WrittenObject
    try {
      written = await publish(this.#written)
    } catch (error) {
      await this.#abortUpload()
      throw error
    }
    // The bytes no part reported (a single PUT), and the object: published, so a throw now is the call's error only.
    const rest = written.size - this.#uploaded
    if (this.#countsObject) this.progress?.addObjects(1, rest, this.key)
    else if (rest > 0) this.progress?.addBytes(rest, this.key)
    return written
  }

  async #abortUpload(): Promise<void> {
    this.release()
    await this.upload.abort()
  }

  #check(): void {
    if (this.#state !== 'open') throw new Error(`${this.constructor.name} for ${this.key} is already ${this.#state}`)
  }
}

/** Streams bytes into one object; see the module comment. */
export class ObjectWriter extends PartWriter implements Writer<Uint8Array, WrittenObject> {
  #nextPart = 1

  /** Publishes the object: a single PUT, or the last part and the completion. */
  finish(): Promise<WrittenObject> {
    return this.finishWith(async (size) => {
      if (!this.multipart) return { key: this.key, etag: await putSingle(this.ctx, this.key, this.buffer.take(), this.options), size }
      if (this.buffer.size > 0) await this.emit(this.buffer.take())
      return { key: this.key, etag: await this.upload.complete(size), size }
    })
  }

  protected override emit(part: Uint8Array): Promise<void> {
    return this.upload.upload(this.#nextPart++, part)
  }
}

/**
 * Writes bytes to `key` in one go: multipart when larger than a part, except a conditional write,
 * which is one PutObject up to the largest the server takes (see the module comment).
 */
export async function putBytes(ctx: S3Context, key: string, body: Uint8Array, options: UploadOptions = {}): Promise<WrittenObject> {
  const size = body.byteLength
  const progress = progressCounter(options, { totalObjects: 1, totalBytes: size })
  if (isConditional(options) && size > partSizeOf(options) && singlePutFits(ctx.client, size)) {
    try {
      const written = { key, etag: await putSingle(ctx, key, body, options), size }
      progress?.addObjects(1, size, key)
      return written
    } catch (error) {
      if (!isTooLarge(error)) throw error
      if (learnSinglePutRefused(ctx.client, size)) {
        emitEvent(ctx, { type: 'capability-learned', capability: 'maxSinglePutRefused', value: size, key })
      }
      emitEvent(ctx, {
        type: 'fallback',
        key,
        fallback: 'multipart-upload',
        reason: `the server refused a single PUT of ${size} bytes as too large`,
      })
    }
  }
  const writer = new ObjectWriter(ctx, key, options, progress, true)
  await writer.add(body)
  return writer.finish()
}

/** A single PUT refused for its size: HTTP 413 (fauxqs), or `EntityTooLarge` (AWS S3 answers it with 400). */
function isTooLarge(error: unknown): boolean {
  if (!(error instanceof S3RequestError)) return false
  const code = (error.cause as { name?: string; Code?: string } | undefined) ?? {}
  return error.statusCode === 413 || code.name === 'EntityTooLarge' || code.Code === 'EntityTooLarge'
}
