/**
 * The bytes of one GET, resumable: when the connection breaks mid-body, the rest is asked for again
 * with `Range: bytes=<next byte>-` and `If-Match: <the ETag of the first answer>`, a bounded number
 * of times with a growing pause, and the reader sees one uninterrupted stream. If the object was
 * replaced in between, the server answers 412 and the read fails with `ObjectChangedError` rather
 * than splicing two versions. Used for loose objects and archives alike.
 *
 * @example
 * ```ts
 * import { getObjectBody, openObjectSource } from '@s3exchange/core'
 *
 * const { info, source } = await openObjectSource(ctx, 'ds/shards/shard-00000.tar', { resumeAttempts: 3 })
 * source.on('data', (chunk) => …); source.on('end', …); source.on('error', …); source.resume()
 * const body = await getObjectBody(ctx, 'ds/clip.wav')   // the same, as an ObjectBody (a Readable with bytes())
 * ```
 */
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3'
import { ObjectChangedError, S3ExchangeError, S3RequestError } from '../format/errors.js'
import { checkOptions } from '../format/options.js'
import { type ByteSource, ObjectBody, type ObjectInfo } from './body.js'
import type { S3Context } from './context.js'
import { answeredEtag, type RangeOptions, requestObject } from './requests.js'

/** Default number of times a broken body is resumed. */
export const DEFAULT_RESUME_ATTEMPTS = 3

/** Options for {@link openObjectSource} and {@link getObjectBody}: a byte range, an ETag to insist on, resumption. */
export interface ObjectSourceOptions extends RangeOptions {
  /** Times a body cut mid-way is resumed. Default 3; 0 turns resumption off. */
  resumeAttempts?: number
}

/**
 * Opens a GET of `key` and returns its body as an {@link ObjectBody}. A body cut mid-way is
 * resumed (see `openObjectSource`); a body that still fails is an `S3RequestError`.
 */
export async function getObjectBody(ctx: S3Context, key: string, options: ObjectSourceOptions = {}): Promise<ObjectBody> {
  const { info, source } = await openObjectSource(ctx, key, options)
  return objectBodyFrom(ctx, info, source)
}

/** The `ObjectBody` over an opened GET, with its errors typed. */
export function objectBodyFrom(ctx: S3Context, info: ObjectInfo, source: ResumableSource): ObjectBody {
  const key = info.key
  return ObjectBody.fromSource(info, source, {
    wrapError: (error) => {
      // A body cut by the caller's signal fails with a plain 'aborted' error: give the signal's reason.
      if (ctx.signal?.aborted) return ctx.signal.reason ?? error
      return error instanceof S3ExchangeError ? error : new S3RequestError('GetObject', key, error)
    },
    release: (complete) => {
      if (!complete) source.destroy()
    },
  })
}

/** Opens a GET and returns what is known of the object and a resumable source of its bytes. */
export async function openObjectSource(
  ctx: S3Context,
  key: string,
  options: ObjectSourceOptions = {},
): Promise<{ info: ObjectInfo; source: ResumableSource }> {
  checkOptions('getObjectBody', options)
  const response = await requestObject(ctx, key, options)
  const info: ObjectInfo = {
    key,
    size: response.ContentLength,
    etag: answeredEtag(response.ETag),
    contentType: response.ContentType,
    contentRange: response.ContentRange,
  }
  return { info, source: new ResumableSource(ctx, key, response, options) }
}

/**
 * A byte stream over one or more GETs of the same object version (see the module comment). It has
 * the small surface `ObjectBody` wraps: `data` / `end` / `error` events, `pause()`, `resume()`,
 * `destroy()`; it starts paused.
 */
export class ResumableSource extends EventEmitter implements ByteSource {
  readonly #ctx: S3Context
  readonly #key: string
  readonly #etag: string | undefined
  readonly #start: number
  readonly #expected: number | undefined
  readonly #end: number | undefined
  #attemptsLeft: number
  #attempts = 0
  #stream: Readable | undefined
  #received = 0
  #paused = true
  #finished = false
  #resuming = false

  constructor(ctx: S3Context, key: string, response: GetObjectCommandOutput, options: ObjectSourceOptions = {}) {
    super()
    this.#ctx = ctx
    this.#key = key
    this.#etag = answeredEtag(response.ETag)
    this.#start = options.start ?? 0
    this.#end = options.end
    this.#expected = response.ContentLength
    // Without an ETag there is nothing to pin a resumed read to: do not resume.
    this.#attemptsLeft = this.#etag ? (options.resumeAttempts ?? DEFAULT_RESUME_ATTEMPTS) : 0
    this.#attach(response.Body as Readable | undefined)
  }

  /** Bytes delivered so far. */
  get received(): number {
    return this.#received
  }

  pause(): this {
    this.#paused = true
    this.#stream?.pause()
    return this
  }

  resume(): this {
    this.#paused = false
    this.#stream?.resume()
    return this
  }

  /** Stops reading and closes the connection. */
  destroy(): void {
    this.#finished = true
    const stream = this.#stream
    this.#stream = undefined
    if (stream) {
      stream.removeAllListeners('data')
      stream.on('error', ignore)
      stream.destroy()
    }
  }

  #attach(stream: Readable | undefined): void {
    if (stream === undefined) {
      queueMicrotask(() => this.#complete())
      return
    }
    this.#stream = stream
    stream.on('data', (chunk: Uint8Array) => {
      if (this.#finished || this.#stream !== stream) return
      this.#received += chunk.byteLength
      this.emit('data', chunk)
    })
    stream.on('end', () => {
      if (this.#stream !== stream) return
      // A body that ends short of its length without an error was cut too.
      if (this.#expected !== undefined && this.#received < this.#expected) this.#broken(new Error('the body ended early'))
      else this.#complete()
    })
    stream.on('error', (error: Error) => {
      if (this.#stream === stream) this.#broken(error)
    })
    if (this.#paused) stream.pause()
    else stream.resume()
  }

  #complete(): void {
    if (this.#finished) return
    this.#finished = true
    this.emit('end')
  }

  #broken(error: Error): void {
    if (this.#finished || this.#resuming) return
    const old = this.#stream
    this.#stream = undefined
    old?.on('error', ignore)
    old?.destroy()
    if (this.#ctx.signal?.aborted || this.#attemptsLeft <= 0) {
      this.#fail(
        this.#attempts > 0 && !this.#ctx.signal?.aborted
          ? new Error(
              `the connection broke ${this.#attempts + 1} times; gave up after ${this.#attempts} resumed reads (${error.message})`,
              {
                cause: error,
              },
            )
          : error,
      )
      return
    }
    this.#attemptsLeft--
    this.#resuming = true
    void this.#reopen(error)
  }

  async #reopen(cause: Error): Promise<void> {
    try {
      await sleep(Math.min(1000, 50 * 2 ** this.#attempts++), undefined, { signal: this.#ctx.signal })
      const from = this.#start + this.#received
      const response = await requestObject(this.#ctx, this.#key, { start: from, end: this.#end, ifMatch: this.#etag })
      // Never splice: the answer must be the same version, from the byte asked for.
      if (answeredEtag(response.ETag) !== this.#etag) throw new ObjectChangedError(this.#key)
      if (!response.ContentRange?.startsWith(`bytes ${from}-`)) {
        ;(response.Body as Readable | undefined)?.destroy()
        throw new Error(`the server did not resume at byte ${from} (Content-Range: ${response.ContentRange ?? 'none'})`)
      }
      this.#resuming = false
      if (this.#finished) {
        ;(response.Body as Readable | undefined)?.destroy()
        return
      }
      this.#attach(response.Body as Readable | undefined)
    } catch (error) {
      this.#resuming = false
      this.#fail(error instanceof Error ? error : cause)
    }
  }

  #fail(error: Error): void {
    if (this.#finished) return
    this.#finished = true
    this.emit('error', error)
  }
}

/** Reads a whole source into memory (resuming as it does); errors come out as `S3RequestError`. */
export function collectSource(ctx: S3Context, key: string, source: ResumableSource): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = []
    source.on('data', (chunk: Uint8Array) => chunks.push(chunk))
    source.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks)))
    source.on('error', (error: Error) => {
      if (ctx.signal?.aborted) reject(ctx.signal.reason ?? error)
      else reject(error instanceof S3ExchangeError ? error : new S3RequestError('GetObject', key, error))
    })
    source.resume()
  })
}

function ignore(): void {}
