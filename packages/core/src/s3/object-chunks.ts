/**
 * `ObjectChunks`: the bytes of one object as an async iterable of chunks that can let go of its
 * connection mid-way and pick up where it stopped. `detach(readAhead)` reads up to `readAhead`
 * more bytes into memory and, if the object goes on past them, closes the connection; iterating
 * on first serves what was read ahead, then asks for the rest with a ranged GET pinned to the
 * ETag of the first answer (`Range: bytes=<next>-`, `If-Match`), so the bytes are never spliced
 * from two versions: a replaced object is `ObjectChangedError`. A small object is read to its end
 * by `detach` and never asked for again.
 *
 * This is how a manifest being descended from (a `manifest_ref` in it is being followed) holds no
 * connection while its refs are read: see `expandRefs`.
 *
 * @example
 * ```ts
 * import { ObjectChunks } from '@s3exchange/core/internals'
 *
 * const chunks = await ObjectChunks.open(ctx, 'ds/manifest.jsonl')
 * const first = await chunks.next()
 * await chunks.detach(1 << 20)       // the rest (up to 1 MiB) in memory; the connection closed if more is left
 * for await (const chunk of chunks) … // what was read ahead, then a ranged GET for the rest
 * ```
 */
import { ObjectChangedError, ObjectNotFoundError } from '../format/errors.js'
import type { ObjectBody } from './body.js'
import type { S3Context } from './context.js'
import { getObjectBody } from './object-source.js'

/** Bytes of a manifest read into memory when it lets go of its connection: its rest, when smaller. */
export const DETACH_READ_AHEAD_BYTES = 1024 * 1024

/** Chunks of one object, detachable from the wire; see the module comment. */
export class ObjectChunks implements AsyncIterableIterator<Uint8Array> {
  readonly key: string
  readonly #ctx: S3Context
  readonly #etag: string | undefined
  readonly #size: number | undefined
  #body: ObjectBody | undefined
  #chunks: AsyncIterator<Uint8Array> | undefined
  /** Bytes taken off the wire so far (served or read ahead). */
  #received = 0
  #readAhead: Uint8Array[] = []
  #ended = false
  #closed = false

  private constructor(ctx: S3Context, key: string, body: ObjectBody) {
    this.#ctx = ctx
    this.key = key
    this.#etag = body.etag
    this.#size = body.size
    this.#attach(body)
  }

  /** Opens the object (one GET); a missing object is `ObjectNotFoundError`. */
  static async open(ctx: S3Context, key: string): Promise<ObjectChunks> {
    return new ObjectChunks(ctx, key, await getObjectBody(ctx, key))
  }

  /** True while a connection is open for this object. */
  get attached(): boolean {
    return this.#body !== undefined
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async next(): Promise<IteratorResult<Uint8Array, undefined>> {
    const ahead = this.#readAhead.shift()
    if (ahead !== undefined) return { done: false, value: ahead }
    if (this.#ended || this.#closed) return { done: true, value: undefined }
    if (this.#chunks === undefined) await this.#reattach()
    return this.#pull()
  }

  async return(): Promise<IteratorResult<Uint8Array, undefined>> {
    this.close()
    return { done: true, value: undefined }
  }

  /**
   * Reads up to `readAhead` more bytes into memory and, if the object goes on past them, closes
   * the connection (see the module comment). Call it between chunks, not while a `next()` is pending.
   */
  async detach(readAhead: number = DETACH_READ_AHEAD_BYTES): Promise<void> {
    if (this.#chunks === undefined || this.#ended || this.#closed) return
    let read = 0
    // Without an ETag a later read could not be pinned to this version: read the rest instead.
    while (read < readAhead || this.#etag === undefined) {
      const next = await this.#pull()
      if (next.done) return
      this.#readAhead.push(next.value)
      read += next.value.byteLength
    }
    if (this.#size !== undefined && this.#received >= this.#size) return
    this.#detachBody()
  }

  /** Stops reading and closes the connection. */
  close(): void {
    this.#closed = true
    this.#readAhead = []
    this.#detachBody()
  }

  #attach(body: ObjectBody): void {
    this.#body = body
    this.#chunks = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>
  }

  #detachBody(): void {
    const body = this.#body
    this.#body = undefined
    this.#chunks = undefined
    body?.destroy()
  }

  async #pull(): Promise<IteratorResult<Uint8Array, undefined>> {
    const next = await (this.#chunks as AsyncIterator<Uint8Array>).next()
    if (next.done) {
      this.#ended = true
      this.#body = undefined
      this.#chunks = undefined
      return { done: true, value: undefined }
    }
    this.#received += next.value.byteLength
    return next
  }

  /** The rest of the object, from the next byte, pinned to the first answer's ETag. */
  async #reattach(): Promise<void> {
    if (this.#size !== undefined && this.#received >= this.#size) {
      this.#ended = true
      return
    }
    let body: ObjectBody
    try {
      body = await getObjectBody(this.#ctx, this.key, { start: this.#received, ifMatch: this.#etag })
    } catch (error) {
      // Gone since it was first read: it changed under us, as much as a 412 would say.
      if (error instanceof ObjectNotFoundError) throw new ObjectChangedError(this.key, { cause: error })
      throw error
    }
    if (this.#closed) {
      body.destroy()
      return
    }
    this.#attach(body)
  }
}
