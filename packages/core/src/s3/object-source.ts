/**
 * The bytes of one GET, resumable: when the connection breaks mid-body, the rest is asked for again
 * with `Range: bytes=<next byte>-` and `If-Match: <the ETag of the first answer>`, a bounded number
 * of times with a growing pause, and the reader sees one uninterrupted stream. If the object was
 * replaced in between, the server answers 412 and the read fails with `ObjectChangedError` rather
 * than splicing two versions. Used for loose objects and archives alike.
 *
 * When the context asks for ranged reads (`ctx.ranges`), an answer larger than `2 × rangeSize` is
 * read only up to `rangeSize` (then that connection is closed), and the rest as consecutive ranges,
 * several at once, each such a resumable GET pinned to the first answer's ETag with `If-Match`,
 * delivered in order as one stream (`OrderedRanges`); a read whose length is asked for asks for its
 * first range only.
 *
 * @example
 * ```ts
 * import { getObjectBody, openObjectSource } from '@s3exchange/core'
 *
 * const { info, source } = await openObjectSource(ctx, 'ds/shards/shard-00000.tar', { resumeAttempts: 3 })
 * source.on('data', (chunk) => …); source.on('end', …); source.on('error', …); source.resume()
 * const body = await getObjectBody(ctx, 'ds/clip.wav')   // the same, as an ObjectBody (a Readable with bytes())
 * ```
 *
 * (Over 300 lines on purpose: the resumable GET and its parallel ranges share the ETag pinning and
 * the resume state.)
 */
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3'
import { ObjectChangedError, S3ExchangeError, S3RequestError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import { checkOptions } from '../format/options.js'
import { ObjectBody, type ObjectInfo } from './body.js'
import type { S3Context } from './context.js'
import { OrderedRanges, type RangeSource } from './ordered-ranges.js'
import { type ByteRange, planRanges, type RangedReads, rangedReadsOf, totalSizeOf, worthSplitting } from './range-plan.js'
import { rangeSlotsFor } from './range-slots.js'
import { answeredEtag, type RangeOptions, requestObject } from './requests.js'

/** Default number of times a broken body is resumed. */
export const DEFAULT_RESUME_ATTEMPTS = 3

/** Options for {@link openObjectSource} and {@link getObjectBody}: a byte range, an ETag to insist on, resumption. */
export interface ObjectSourceOptions extends RangeOptions {
  /** Times a body cut mid-way is resumed (each range of a ranged read on its own). Default 3; 0 turns resumption off. */
  resumeAttempts?: number
}

/** The bytes of an opened GET: one resumable GET, or ranges of it delivered in order. */
export type ObjectSource = RangeSource

/**
 * Opens a GET of `key` and returns its body as an {@link ObjectBody}. A body cut mid-way is
 * resumed (see `openObjectSource`); a body that still fails is an `S3RequestError`.
 */
export async function getObjectBody(ctx: S3Context, key: string, options: ObjectSourceOptions = {}): Promise<ObjectBody> {
  const { info, source } = await openObjectSource(ctx, key, options)
  return objectBodyFrom(ctx, info, source)
}

/** The `ObjectBody` over an opened GET, with its errors typed. */
export function objectBodyFrom(ctx: S3Context, info: ObjectInfo, source: ObjectSource): ObjectBody {
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

/**
 * Opens a GET and returns what is known of the object and a resumable source of its bytes; with
 * `ctx.ranges`, a large object's bytes come from parallel ranged GETs (see the module comment).
 */
export async function openObjectSource(
  ctx: S3Context,
  key: string,
  options: ObjectSourceOptions = {},
): Promise<{ info: ObjectInfo; source: ObjectSource }> {
  const reads = ctx.ranges === undefined ? undefined : rangedReadsOf(ctx.ranges)
  if (ctx.ranges === undefined || reads === undefined || reads.rangeConcurrency === 0) return openWhole(ctx, key, options)
  const start = options.start ?? 0
  const asked = options.end === undefined ? undefined : options.end - start + 1
  if (asked !== undefined && worthSplitting(asked, reads)) {
    // The length is known: the first GET asks for the first range only.
    const response = await requestObject(ctx, key, { start, end: start + reads.rangeSize - 1, ifMatch: options.ifMatch })
    const total = totalSizeOf(response.ContentRange)
    const last = Math.min(options.end as number, (total ?? Number.POSITIVE_INFINITY) - 1)
    const headEnd = start + (response.ContentLength ?? 0) - 1
    const info = { ...infoOf(key, response), size: last - start + 1, contentRange: `bytes ${start}-${last}/${total ?? '*'}` }
    const head = new ResumableSource(ctx, key, response, { start, end: headEnd, resumeAttempts: options.resumeAttempts })
    if (headEnd >= last || info.etag === undefined) return { info, source: head }
    return { info, source: readOnInRanges(ctx, ctx.ranges, key, head, { start: headEnd + 1, end: last }, info.etag, reads, options) }
  }
  // Otherwise the GET asked for today; an answer larger than two ranges is cut after the first.
  const response = await requestObject(ctx, key, options)
  const info = infoOf(key, response)
  const length = response.ContentLength
  if (length === undefined || !worthSplitting(length, reads) || info.etag === undefined) {
    return { info, source: new ResumableSource(ctx, key, response, options) }
  }
  const headEnd = start + reads.rangeSize - 1
  const head = new FirstBytes(new ResumableSource(ctx, key, response, { ...options, end: headEnd }), reads.rangeSize)
  const rest = { start: headEnd + 1, end: start + length - 1 }
  return { info, source: readOnInRanges(ctx, ctx.ranges, key, head, rest, info.etag, reads, options) }
}

/** One GET of what was asked, resumable. */
async function openWhole(
  ctx: S3Context,
  key: string,
  options: ObjectSourceOptions,
): Promise<{ info: ObjectInfo; source: ResumableSource }> {
  checkOptions('getObjectBody', options)
  const response = await requestObject(ctx, key, options)
  return { info: infoOf(key, response), source: new ResumableSource(ctx, key, response, options) }
}

function infoOf(key: string, response: GetObjectCommandOutput): ObjectInfo {
  return {
    key,
    size: response.ContentLength,
    etag: answeredEtag(response.ETag),
    contentType: response.ContentType,
    contentRange: response.ContentRange,
  }
}

/**
 * The rest of a read after its first answer (`head`): consecutive ranges of `rest`, fetched several
 * at once and delivered in order after `head`, each a resumable GET pinned to `etag`.
 */
function readOnInRanges(
  ctx: S3Context,
  owner: object,
  key: string,
  head: RangeSource,
  rest: ByteRange,
  etag: string,
  reads: RangedReads,
  options: ObjectSourceOptions,
): ObjectSource {
  const openRange = async (range: ByteRange, signal: AbortSignal): Promise<RangeSource> => {
    const rangeCtx: S3Context = { ...ctx, signal, ranges: undefined }
    const response = await requestObject(rangeCtx, key, { ...range, ifMatch: etag })
    if (answeredEtag(response.ETag) !== etag) {
      ;(response.Body as Readable | undefined)?.destroy()
      throw new ObjectChangedError(key)
    }
    if (!response.ContentRange?.startsWith(`bytes ${range.start}-`)) {
      ;(response.Body as Readable | undefined)?.destroy()
      throw new Error(`the server did not answer the range from byte ${range.start} (Content-Range: ${response.ContentRange ?? 'none'})`)
    }
    return new ResumableSource(rangeCtx, key, response, { ...range, resumeAttempts: options.resumeAttempts })
  }
  const ranges = planRanges(rest.start, rest.end, reads.rangeSize)
  return new OrderedRanges(head, ranges, openRange, rangeSlotsFor(owner, reads.rangeConcurrency), ctx.signal)
}

/**
 * The first `count` bytes of a source, then its end: the source (a GET of the whole object) is
 * closed there, and the ranges after it are read by other GETs.
 */
class FirstBytes extends EventEmitter implements RangeSource {
  readonly #source: RangeSource
  #left: number
  #done = false

  constructor(source: RangeSource, count: number) {
    super()
    this.#source = source
    this.#left = count
    source.on('data', (chunk: Uint8Array) => {
      if (this.#done) return
      if (chunk.byteLength < this.#left) {
        this.#left -= chunk.byteLength
        this.emit('data', chunk)
        return
      }
      const last = chunk.subarray(0, this.#left)
      this.#left = 0
      this.#done = true
      source.destroy()
      this.emit('data', last)
      this.emit('end')
    })
    source.on('end', () => this.#fail(new Error(`the body ended ${this.#left} bytes short of its first range`)))
    source.on('error', (error: Error) => this.#fail(error))
  }

  pause(): this {
    this.#source.pause()
    return this
  }

  resume(): this {
    this.#source.resume()
    return this
  }

  destroy(): void {
    this.#done = true
    this.#source.destroy()
  }

  #fail(error: Error): void {
    if (this.#done) return
    this.#done = true
    this.emit('error', error)
  }
}

/**
 * A byte stream over one or more GETs of the same object version (see the module comment). It has
 * the small surface `ObjectBody` wraps: `data` / `end` / `error` events, `pause()`, `resume()`,
 * `destroy()`; it starts paused.
 */
export class ResumableSource extends EventEmitter implements RangeSource {
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
      emitEvent(this.#ctx, { type: 'read-resumed', key: this.#key, offset: from, attempt: this.#attempts, reason: cause.message })
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
export function collectSource(ctx: S3Context, key: string, source: ObjectSource): Promise<Uint8Array> {
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
