/**
 * `ObjectBody`: the bytes of one object or archive member, as a Node `Readable` with `bytes()`
 * and `text()` added (as the AWS SDK's own bodies have `transformToByteArray`). Consume it, or
 * `destroy()` it to let go of the connection. Errors while reading are typed (`S3RequestError`
 * for an object, `ShardReadError` for an archive member) and are only raised to a reader: a body
 * nobody reads never crashes the process with an unhandled `'error'` event.
 *
 * A body is read once, whatever its kind (in memory, streamed, an archive member): a second
 * `bytes()`, `text()` or `for await`, and one after the body was released (`abandon()`: the
 * iteration that gave it moved on) or destroyed, fails with `BodyConsumedError` naming the key.
 *
 * (Over 300 lines on purpose: one class whose states, bytes in memory, streamed, collected by
 * `bytes()`, abandoned, checked by `expect()`, interlock and read best together.)
 *
 * @example
 * ```ts
 * const body = await store.getObject('training/123/samples/file.wav')
 * console.log(body.key, body.size)          // what it is
 * const bytes = await body.bytes()          // or: for await (const chunk of body) …, or body.pipe(…)
 * ```
 */

import { createHash, type Hash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FileEntry, ManifestEntry } from '../format/entries.js'
import { BodyConsumedError, IntegrityError } from '../format/errors.js'

/** What is known about a body before reading it. */
export interface ObjectInfo {
  /** The key it was read from (a virtual key `archive#member` for archive members). */
  key: string
  /** Its length in bytes, when the server or the archive header said. */
  size?: number | undefined
  /** The object's ETag, unquoted (loose objects only). */
  etag?: string | undefined
  /** The object's Content-Type (loose objects only). */
  contentType?: string | undefined
  /** For a ranged read: the server's Content-Range, e.g. `bytes 0-1023/4096`. */
  contentRange?: string | undefined
  /** For archive members: the archive's key. */
  archiveKey?: string | undefined
  /** For archive members: the member's path inside the archive. */
  memberPath?: string | undefined
  /**
   * For archive members: the member's entry in the archive's internal manifest (as written, not
   * enriched), read from the same version of the archive as the bytes; undefined when it lists none.
   */
  listed?: FileEntry | undefined
}

/** What a body is expected to be, checked as it is read (see `ObjectBody.expect`). */
export interface Expectation {
  /** Its length in bytes. */
  size?: number | undefined
  /** Its SHA-256, hex. */
  sha256?: string | undefined
}

/** The `verify` option of the reads. */
export interface VerifyOptions {
  /**
   * Check every body against its entry as it is read: its length against `size_bytes` and its
   * SHA-256 against `sha256`, where the entry has them (this library's writers record both; Python
   * records the size only; an object read by key alone has no entry to check against). A mismatch
   * fails the read with `IntegrityError` naming the key. Default false: hashing costs CPU (about
   * 1.5 GiB/s per core).
   */
  verify?: boolean
}

/** The expectation an entry carries: its `size_bytes` and `sha256`, when present. */
export function expectationOf(entry: { size_bytes?: unknown; sha256?: unknown }): Expectation {
  return {
    size: typeof entry.size_bytes === 'number' ? entry.size_bytes : undefined,
    sha256: typeof entry.sha256 === 'string' ? entry.sha256 : undefined,
  }
}

/** The minimal stream surface a body can wrap: Node and streamx readables both have it. */
export interface ByteSource {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown
  on(event: 'end', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  // biome-ignore lint/suspicious/noExplicitAny: listeners of any shape, as EventEmitter declares them
  removeListener(event: string, listener: (...args: any[]) => void): unknown
  pause(): unknown
  resume(): unknown
}

/** How a body talks to what it wraps. */
export interface BodySourceOptions {
  /** Turns an error of the source into the typed error a reader should see. */
  wrapError: (error: Error) => Error
  /**
   * Called once, when the body has ended or been destroyed: `complete` tells whether every byte
   * was read. Used to close a connection early, or to skip the rest of an archive member.
   */
  release: (complete: boolean) => void
}

/** A Node `Readable` of one object's bytes, with `bytes()` and `text()`. See the module comment. */
export class ObjectBody extends Readable implements ObjectInfo {
  readonly key: string
  readonly size: number | undefined
  readonly etag: string | undefined
  readonly contentType: string | undefined
  readonly archiveKey: string | undefined
  readonly memberPath: string | undefined
  readonly listed: FileEntry | undefined

  #source: ByteSource | undefined
  #options: BodySourceOptions | undefined
  #whole: Uint8Array | undefined
  #pendingError: Error | undefined
  #waiting = false
  #ended = false
  #released = false
  /** Someone began to read: `bytes()`, `text()`, the stream interface. */
  #started = false
  #abandoned = false
  #collector: { chunks: Uint8Array[]; resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void } | undefined
  #expected: Expectation | undefined
  #hash: Hash | undefined
  #seen = 0

  private constructor(info: ObjectInfo) {
    super({ highWaterMark: 64 * 1024 })
    this.key = info.key
    this.size = info.size
    this.etag = info.etag
    this.contentType = info.contentType
    this.archiveKey = info.archiveKey
    this.memberPath = info.memberPath
    this.listed = info.listed
  }

  /** A body over bytes already in memory. */
  static fromBytes(info: ObjectInfo, bytes: Uint8Array): ObjectBody {
    const body = new ObjectBody({ ...info, size: info.size ?? bytes.byteLength })
    body.#whole = bytes
    return body
  }

  /** A body that streams from `source`, which must be paused or not yet flowing. */
  static fromSource(info: ObjectInfo, source: ByteSource, options: BodySourceOptions): ObjectBody {
    const body = new ObjectBody(info)
    body.#source = source
    body.#options = options
    source.on('data', body.#onData)
    source.on('end', body.#onEnd)
    source.on('error', body.#onError)
    source.pause()
    return body
  }

  /**
   * Checks the bytes as they are read: their count against `size`, their SHA-256 (hex) against
   * `sha256`. A mismatch fails the read with `IntegrityError` at its end. Call before reading.
   */
  expect(expected: Expectation): this {
    if (expected.size === undefined && expected.sha256 === undefined) return this
    this.#expected = expected
    if (expected.sha256 !== undefined) this.#hash = createHash('sha256')
    return this
  }

  /** True when the whole body is already in memory (prefetched), so reading it costs no I/O. */
  get buffered(): boolean {
    return this.#whole !== undefined
  }

  /** Reads the whole body (once: see the module comment). */
  async bytes(): Promise<Uint8Array> {
    const refusal = this.#refusal()
    if (refusal) throw refusal
    this.#started = true
    const whole = this.#whole
    if (whole !== undefined) {
      this.#whole = undefined
      this.#ended = true
      this.destroy()
      this.#see(whole)
      const mismatch = this.#mismatch()
      if (mismatch) throw mismatch
      return whole
    }
    const source = this.#source
    if (source && this.readableLength === 0 && !this.#ended && !this.#pendingError) {
      // Nothing was read through the stream interface: collect straight from the source.
      return new Promise<Uint8Array>((resolve, reject) => {
        this.#collector = { chunks: [], resolve, reject }
        source.resume()
      })
    }
    const chunks: Uint8Array[] = []
    for await (const chunk of this.#chunks()) chunks.push(chunk as Uint8Array)
    return concatChunks(chunks)
  }

  /** Iterates the chunks (once: see the module comment). */
  // biome-ignore lint/suspicious/noExplicitAny: the signature of Readable's own iterator
  override [Symbol.asyncIterator](): NodeJS.AsyncIterator<any> {
    const refusal = this.#refusal()
    if (refusal) {
      return {
        next: () => Promise.reject(refusal),
        return: async () => ({ done: true, value: undefined }),
        [Symbol.asyncIterator]() {
          return this
        },
        [Symbol.asyncDispose]: async () => {},
      } as unknown as ReturnType<Readable[typeof Symbol.asyncIterator]>
    }
    this.#started = true
    return this.#chunks()
  }

  #chunks(): ReturnType<Readable[typeof Symbol.asyncIterator]> {
    return Readable.prototype[Symbol.asyncIterator].call(this)
  }

  /** Why this body can no longer be read, if it cannot. */
  #refusal(): BodyConsumedError | undefined {
    if (this.#abandoned) return new BodyConsumedError(this.key, 'released')
    if (this.#started) return new BodyConsumedError(this.key, 'read')
    if (this.destroyed) return new BodyConsumedError(this.key, 'destroyed')
    return undefined
  }

  /** Reads the whole body and decodes it as UTF-8. */
  async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes())
  }

  /**
   * Releases this body unread (or not read to the end), because the iteration that produced it
   * moved on: its connection is closed (an archive member is skipped), and later reads, or a read
   * still pending, fail with `BodyConsumedError` (`reason: 'released'`). Does nothing to a body
   * that was read to the end or destroyed.
   */
  abandon(): void {
    if ((this.#started && this.#ended) || (this.destroyed && !this.#ended)) return
    this.#abandoned = true
    this.destroy()
  }

  override _read(): void {
    this.#started = true
    if (this.#whole !== undefined) {
      const whole = this.#whole
      this.#whole = undefined
      this.#see(whole)
      const mismatch = this.#mismatch()
      if (mismatch) {
        this.destroy(mismatch)
        return
      }
      if (whole.byteLength > 0) this.push(whole)
      this.#ended = true
      this.push(null)
      return
    }
    if (this.#source === undefined) {
      this.#ended = true
      this.push(null)
      return
    }
    if (this.#pendingError) {
      this.destroy(this.#pendingError)
      return
    }
    this.#waiting = true
    this.#source.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release()
    // A bytes() still collecting would otherwise wait forever: #release stopped listening to the source.
    const collector = this.#collector
    if (collector) {
      this.#collector = undefined
      collector.reject(error ?? new BodyConsumedError(this.key, this.#abandoned ? 'released' : 'destroyed'))
    }
    if (this.#abandoned && !error) {
      callback(null)
      return
    }
    callback(error)
  }

  #onData = (chunk: Uint8Array): void => {
    this.#see(chunk)
    if (this.#collector) {
      this.#collector.chunks.push(chunk)
      return
    }
    this.#waiting = false
    if (!this.push(chunk)) this.#source?.pause()
  }

  #onEnd = (): void => {
    const mismatch = this.#mismatch()
    if (mismatch) {
      this.#fail(mismatch)
      return
    }
    this.#ended = true
    const collector = this.#collector
    this.#collector = undefined
    this.push(null)
    this.#release()
    if (collector) {
      collector.resolve(concatChunks(collector.chunks))
      this.destroy()
    }
  }

  #onError = (error: Error): void => {
    this.#fail(this.#options ? this.#options.wrapError(error) : error)
  }

  #fail(typed: Error): void {
    const collector = this.#collector
    if (collector) {
      this.#collector = undefined
      collector.reject(typed)
      this.destroy()
      return
    }
    // Raise it now only if someone is reading; otherwise hold it for the next read, so that an
    // unread body cannot crash the process with an unhandled 'error' event.
    if (this.#waiting || this.readableFlowing === true) this.destroy(typed)
    else this.#pendingError = typed
  }

  #see(chunk: Uint8Array): void {
    if (this.#expected === undefined) return
    this.#seen += chunk.byteLength
    this.#hash?.update(chunk)
  }

  /** The integrity error of what was read, once it all was, if any. */
  #mismatch(): IntegrityError | undefined {
    const expected = this.#expected
    if (expected === undefined) return undefined
    if (expected.size !== undefined && this.#seen !== expected.size)
      return new IntegrityError(this.key, 'size_bytes', expected.size, this.#seen)
    if (expected.sha256 !== undefined) {
      const actual = (this.#hash as Hash).digest('hex')
      if (actual !== expected.sha256.toLowerCase()) return new IntegrityError(this.key, 'sha256', expected.sha256, actual)
    }
    return undefined
  }

  #release(): void {
    if (this.#released) return
    this.#released = true
    const source = this.#source
    if (source) {
      source.removeListener('data', this.#onData)
      source.removeListener('end', this.#onEnd)
      // Keep swallowing errors of a source we no longer read from.
      source.removeListener('error', this.#onError)
      source.on('error', ignore)
    }
    this.#options?.release(this.#ended)
  }
}

function ignore(): void {}

function concatChunks(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array
  return chunks.length === 0 ? new Uint8Array(0) : Buffer.concat(chunks)
}

/** An entry with the bytes of the object it names. */
export interface EntryWithBody<E extends ManifestEntry = ManifestEntry> {
  entry: E
  body: ObjectBody
}

/** An item of a pipeline: an entry, or an entry with its body. */
export type PipelineItem = ManifestEntry | EntryWithBody

/** True for an item that already carries its body. */
export function hasBody(item: PipelineItem): item is EntryWithBody {
  return (item as { kind?: unknown }).kind === undefined && (item as { body?: unknown }).body !== undefined
}
