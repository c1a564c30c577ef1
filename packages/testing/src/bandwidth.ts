/**
 * A bandwidth cap for one direction of one connection, for the test proxy: a token bucket that
 * fills at `bytesPerSecond` up to `capacityBytes` (full when the connection opens), and a stream
 * that lets bytes through only as the bucket gives tokens for them, in slices of at most a quarter
 * of the bucket (and 64 KiB). A connection idle for a while may so send `capacityBytes` at once,
 * then the rate holds: by any moment `t` after the bucket was made, at most
 * `capacityBytes + bytesPerSecond × (t - createdAt)` bytes have been let through. Each release is recorded (`at`, `bytes`), so a test can check that
 * bound on the proxy's own schedule.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises'
 * const bucket = new TokenBucket(25e6, 512 * 1024)
 * const released: PacedSlice[] = []
 * await pipeline(source, pacedStream(bucket, released), destination) // 25 MB/s after a 512 KiB burst
 * ```
 */
import { Transform } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'

/** Bytes let through at once, at most: a quarter of the bucket (to pace smoothly), at most 64 KiB (a socket read's worth, cheap). */
function sliceBytes(capacityBytes: number): number {
  return Math.max(1, Math.min(64 * 1024, Math.floor(capacityBytes / 4)))
}

/** Bytes let through at one moment, on `performance.now()`'s clock (milliseconds). */
export interface PacedSlice {
  at: number
  bytes: number
}

/** The default burst of a capped connection: 20 ms of its rate, at least 64 KiB. */
export function defaultBurstBytes(bytesPerSecond: number): number {
  return Math.max(Math.ceil(bytesPerSecond * 0.02), 64 * 1024)
}

/** Waits until `performance.now()` reaches `deadline` (timers may fire a fraction of a millisecond early; this does not return early). */
export async function holdUntil(deadline: number): Promise<void> {
  for (let left = deadline - performance.now(); left > 0; left = deadline - performance.now()) await sleep(Math.ceil(left))
}

/** A token bucket on `performance.now()`'s clock. */
export class TokenBucket {
  /** When the bucket was made, full (`performance.now()` milliseconds). */
  readonly createdAt = performance.now()
  #tokens: number
  #updatedAt = this.createdAt
  #queue: Promise<unknown> = Promise.resolve()
  readonly bytesPerSecond: number
  readonly capacityBytes: number

  constructor(bytesPerSecond: number, capacityBytes: number) {
    this.bytesPerSecond = bytesPerSecond
    this.capacityBytes = capacityBytes
    this.#tokens = capacityBytes
  }

  /**
   * Waits until `bytes` (at most `capacityBytes`) may pass, takes their tokens and returns the
   * moment it let them through. Calls are served one after the other, in order.
   */
  take(bytes: number): Promise<number> {
    if (!(bytes >= 0 && bytes <= this.capacityBytes))
      throw new RangeError(`cannot take ${bytes} bytes from a bucket of ${this.capacityBytes}`)
    const taken = this.#queue.then(() => this.#take(bytes))
    this.#queue = taken
    return taken
  }

  async #take(bytes: number): Promise<number> {
    for (;;) {
      const now = performance.now()
      this.#tokens = Math.min(this.capacityBytes, this.#tokens + ((now - this.#updatedAt) * this.bytesPerSecond) / 1000)
      this.#updatedAt = now
      if (this.#tokens >= bytes) {
        this.#tokens -= bytes
        return now
      }
      await holdUntil(now + ((bytes - this.#tokens) * 1000) / this.bytesPerSecond)
    }
  }
}

/** A pass-through stream that lets bytes through as `bucket` allows, recording each release in `released` when given. */
export function pacedStream(bucket: TokenBucket, released?: PacedSlice[]): Transform {
  const slice = sliceBytes(bucket.capacityBytes)
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const release = async () => {
        for (let offset = 0; offset < chunk.byteLength && !this.destroyed; offset += slice) {
          const part = chunk.subarray(offset, offset + slice)
          const at = await bucket.take(part.byteLength)
          released?.push({ at, bytes: part.byteLength })
          this.push(part)
        }
      }
      release().then(() => callback(), callback)
    },
  })
}

/**
 * The largest excess, over all stretches of time from one release to a later one (both counted),
 * of the bytes released over what `bytesPerSecond` allows in that time. For the releases of one
 * token bucket of that rate (e.g. a capped connection's `response` slices in the proxy's
 * `connections`) it is at most the bucket's capacity; releases through several buckets at once
 * can exceed it. `slices` in order of `at`. Quadratic in their number: for tests.
 */
export function largestBurst(slices: PacedSlice[], bytesPerSecond: number): number {
  let largest = 0
  for (let first = 0; first < slices.length; first++) {
    let bytes = 0
    for (let last = first; last < slices.length; last++) {
      bytes += (slices[last] as PacedSlice).bytes
      const seconds = ((slices[last] as PacedSlice).at - (slices[first] as PacedSlice).at) / 1000
      largest = Math.max(largest, bytes - bytesPerSecond * seconds)
    }
  }
  return largest
}
