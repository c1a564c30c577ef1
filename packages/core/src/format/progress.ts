/**
 * Progress of a long call, in the style of lib-storage's `httpUploadProgress`: the calls that move
 * many bytes or many objects take an `onProgress` callback, and call it with a `Progress` after
 * each unit of work is done: a part uploaded, an object written, delivered, downloaded or deleted.
 * It is not throttled by time: a call makes one report per part or object, so a display that
 * redraws on every report should throttle itself (the CLI's progress bars do).
 *
 * - `loadedBytes` / `loadedObjects` only grow; they count what is done, never what is under way.
 * - `totalBytes` / `totalObjects` are set only when truly known before the work ends (the size of
 *   a byte array or a file being uploaded, the number of keys to download); never estimated.
 * - A callback that throws fails the call with its error, as an abort would: an upload in progress
 *   is aborted (nothing is published), an iteration stops and releases its bodies. A report made
 *   after an object was published (the last one of a write) throws after the write, which stands.
 *
 * @example
 * ```ts
 * import { S3ExchangeStore } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket' })
 * await store.putObject('exports/big.bin', '/data/big.bin', {
 *   onProgress: ({ loadedBytes, totalBytes }) => console.log(`${loadedBytes} of ${totalBytes ?? '?'} bytes`),
 * })
 * ```
 */

/** How far a long call has got; see the module comment. */
export interface Progress {
  /** Bytes done: uploaded (a part or an object written), delivered to you, downloaded or deleted. */
  loadedBytes: number
  /** The bytes the call will move, when known before it ends (else undefined). */
  totalBytes?: number | undefined
  /** Objects done: written, delivered, downloaded or deleted (a shard member counts as one). */
  loadedObjects: number
  /** The objects the call will move, when known before it ends (else undefined). */
  totalObjects?: number | undefined
  /** The key of the object this report is about (the last one done, or the one being uploaded). */
  key?: string | undefined
}

/** A progress callback; see `Progress`. A throw fails the call (see the module comment). */
export type OnProgress = (progress: Progress) => void

/** The `onProgress` option of the long calls. */
export interface ProgressOptions {
  /**
   * Called with a `Progress` after each part or object is done (not throttled: one call per part
   * or object). A throw fails the call with that error and aborts what is in progress.
   */
  onProgress?: OnProgress | undefined
}

/** Totals known before a call starts. */
export interface ProgressTotals {
  totalBytes?: number | undefined
  totalObjects?: number | undefined
}

/**
 * The figures of one call, reported to its callback as they grow. Made only when a callback is
 * given (`progressCounter`), so a call without one pays nothing.
 */
export class ProgressCounter {
  readonly #onProgress: OnProgress
  #loadedBytes = 0
  #loadedObjects = 0
  #totalBytes: number | undefined
  #totalObjects: number | undefined

  constructor(onProgress: OnProgress, totals: ProgressTotals = {}) {
    this.#onProgress = onProgress
    this.#totalBytes = totals.totalBytes
    this.#totalObjects = totals.totalObjects
  }

  /** Bytes done so far. */
  get loadedBytes(): number {
    return this.#loadedBytes
  }

  /** Objects done so far. */
  get loadedObjects(): number {
    return this.#loadedObjects
  }

  /** Sets totals learned once the call is under way (the number of keys listed, say). */
  setTotals(totals: ProgressTotals): void {
    if (totals.totalBytes !== undefined) this.#totalBytes = totals.totalBytes
    if (totals.totalObjects !== undefined) this.#totalObjects = totals.totalObjects
  }

  /** Adds `bytes` done (a part uploaded) and reports. */
  addBytes(bytes: number, key?: string): void {
    this.#loadedBytes += bytes
    this.#report(key)
  }

  /** Adds `objects` done (one by default) with their `bytes`, and reports. */
  addObjects(objects = 1, bytes = 0, key?: string): void {
    this.#loadedObjects += objects
    this.#loadedBytes += bytes
    this.#report(key)
  }

  #report(key: string | undefined): void {
    const progress: Progress = { loadedBytes: this.#loadedBytes, loadedObjects: this.#loadedObjects }
    if (this.#totalBytes !== undefined) progress.totalBytes = this.#totalBytes
    if (this.#totalObjects !== undefined) progress.totalObjects = this.#totalObjects
    if (key !== undefined) progress.key = key
    this.#onProgress(progress)
  }
}

/** A counter for `options.onProgress`, or undefined when there is no callback (nothing to count). */
export function progressCounter(options: ProgressOptions | undefined, totals: ProgressTotals = {}): ProgressCounter | undefined {
  const onProgress = options?.onProgress
  return onProgress === undefined ? undefined : new ProgressCounter(onProgress, totals)
}
