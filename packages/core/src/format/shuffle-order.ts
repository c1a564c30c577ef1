/**
 * The order of a shuffled epoch, as pure logic (no I/O): a seeded generator, a Fisher–Yates
 * permutation and a bounded shuffle buffer, specified exactly so that any implementation
 * reproduces the same order from the same `(seed, epoch)` (docs/FORMAT.md, "Shuffled epochs").
 *
 * - `shuffleRandom(seed, epoch, stream)`: sfc32 (Chris Doty-Humphrey's Small Fast Counting
 *   generator, 32-bit), its state the first 16 bytes of
 *   `SHA-256("s3exchange.shuffle.v1\n" + seed + "\n" + epoch + "\n" + stream)` as four
 *   little-endian words (a, b, c, counter), then 12 outputs discarded.
 * - `randomBelow(random, n)`: an integer in [0, n), unbiased (a draw at or past the largest
 *   multiple of n below 2^32 is drawn again).
 * - `permute(items, random)`: Fisher–Yates (Durstenfeld), in place: for i from n - 1 down to 1,
 *   swap i with `randomBelow(i + 1)`.
 * - `ShuffleBuffer`: holds at most `bufferSize` items; once full, each new item takes the place of
 *   a random one, which is emitted; at the end what is left is emitted in random order.
 *
 * @example
 * ```ts
 * import { permute, shuffleRandom, ShuffleBuffer } from '@s3exchange/core'
 *
 * const units = permute(['a', 'b', 'c', 'd', 'e'], shuffleRandom(42, 0, 'units')) // the same on every machine
 * const buffer = new ShuffleBuffer<string>(3, shuffleRandom(42, 0, 'buffer'))
 * const order: string[] = []
 * for (const unit of units) {
 *   const out = buffer.push(unit)
 *   if (out.emitted) order.push(out.item)
 * }
 * order.push(...buffer.drain())
 * console.log(order) // every unit once, mixed within a window of 3
 * ```
 */
import { createHash } from 'node:crypto'
import { ConfigurationError } from './errors.js'

/** Options of a shuffled epoch: the `shuffle` option of the reads, and the `shuffle` stages. */
export interface ShuffleOptions {
  /**
   * The run's seed: a safe integer or a non-empty string (a number and its decimal string are
   * the same seed). Every worker of a run passes the same one.
   */
  seed: number | string
  /**
   * The epoch, an integer ≥ 0: each gives another order of the same items. Pass the training
   * loop's epoch number; the same `(seed, epoch)` always gives the same order.
   */
  epoch: number
  /**
   * How many entries the mixing buffer holds, an integer ≥ 1 (1: no mixing beyond the order of
   * shards and loose objects). It holds entries only, never bodies: bodies are fetched after the
   * mix. Larger mixes more (members of more shards at once) and delays the first item by as many
   * entries. Default 10,000.
   */
  bufferSize?: number
}

/** Default `bufferSize` of a shuffle. */
export const DEFAULT_SHUFFLE_BUFFER_SIZE = 10_000

/** A source of uniform 32-bit unsigned integers. */
export type RandomSource = () => number

/** The named random streams a shuffle draws from, each its own generator. */
export type ShuffleStream = 'units' | 'buffer'

const KNOWN_FIELDS = new Set(['seed', 'epoch', 'bufferSize'])

/**
 * Checks `shuffle` options; returns them with `bufferSize` filled in. Throws `ConfigurationError`
 * naming the field (`shuffle.seed`, `shuffle.epoch`, `shuffle.bufferSize`, or an unknown one).
 */
export function checkShuffle(options: ShuffleOptions, name = 'shuffle'): Required<ShuffleOptions> {
  if (options === null || typeof options !== 'object') {
    throw new ConfigurationError(`${name} must be an object { seed, epoch, bufferSize? }, got ${describe(options)}`)
  }
  for (const field of Object.keys(options)) {
    if (!KNOWN_FIELDS.has(field)) throw new ConfigurationError(`${name}.${field} is not an option of ${name} (seed, epoch, bufferSize)`)
  }
  const { seed, epoch, bufferSize = DEFAULT_SHUFFLE_BUFFER_SIZE } = options
  if (!((typeof seed === 'number' && Number.isSafeInteger(seed)) || (typeof seed === 'string' && seed.length > 0))) {
    throw new ConfigurationError(`${name}.seed must be a safe integer or a non-empty string, got ${describe(seed)}`)
  }
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new ConfigurationError(`${name}.epoch must be an integer ≥ 0, got ${describe(epoch)}`)
  }
  if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
    throw new ConfigurationError(`${name}.bufferSize must be an integer ≥ 1, got ${describe(bufferSize)}`)
  }
  return { seed, epoch, bufferSize }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/** The generator of one stream of a `(seed, epoch)`; see the module comment for its exact definition. */
export function shuffleRandom(seed: number | string, epoch: number, stream: ShuffleStream): RandomSource {
  const digest = createHash('sha256')
    .update(`s3exchange.shuffle.v1\n${String(seed)}\n${epoch}\n${stream}`, 'utf8')
    .digest()
  return sfc32(digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12))
}

/** sfc32 from its four state words; the first 12 outputs are discarded. */
export function sfc32(a: number, b: number, c: number, counter: number): RandomSource {
  let [x, y, z, d] = [a | 0, b | 0, c | 0, counter | 0]
  const next = (): number => {
    let t = (x + y) | 0
    x = y ^ (y >>> 9)
    y = (z + (z << 3)) | 0
    z = (z << 21) | (z >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    z = (z + t) | 0
    return t >>> 0
  }
  for (let i = 0; i < 12; i++) next()
  return next
}

const TWO_32 = 2 ** 32

/** An integer in [0, n), n from 1 to 2^32, without modulo bias. */
export function randomBelow(random: RandomSource, n: number): number {
  const limit = TWO_32 - (TWO_32 % n)
  for (;;) {
    const u = random()
    if (u < limit) return u % n
  }
}

/** Fisher–Yates (Durstenfeld) in place; returns `items`. */
export function permute<T>(items: T[], random: RandomSource): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomBelow(random, i + 1)
    const item = items[i] as T
    items[i] = items[j] as T
    items[j] = item
  }
  return items
}

/** What {@link ShuffleBuffer.push} gives back: the item it let out, if any. */
export type BufferOutput<T> = { emitted: true; item: T } | { emitted: false }

/**
 * A bounded shuffle buffer: at most `bufferSize` items are held; once full, each pushed item takes
 * the place of a random one (`randomBelow(bufferSize)`), which is emitted. `drain()` then emits
 * the rest: repeatedly a random one (`randomBelow(held)`), whose place the last item takes.
 */
export class ShuffleBuffer<T> {
  readonly bufferSize: number
  readonly #random: RandomSource
  readonly #items: T[] = []
  /** Items emitted so far (by `push` and `drain`): the position of the next one in the mixed order. */
  emitted = 0

  constructor(bufferSize: number, random: RandomSource) {
    this.bufferSize = bufferSize
    this.#random = random
  }

  /** Items held now (never more than `bufferSize`). */
  get size(): number {
    return this.#items.length
  }

  /** Takes one item in; once the buffer is full, lets a random one out. */
  push(item: T): BufferOutput<T> {
    const items = this.#items
    if (items.length < this.bufferSize) {
      items.push(item)
      return { emitted: false }
    }
    const j = randomBelow(this.#random, this.bufferSize)
    const out = items[j] as T
    items[j] = item
    this.emitted++
    return { emitted: true, item: out }
  }

  /** Lets the held items out in random order, emptying the buffer. */
  *drain(): Generator<T, void, undefined> {
    const items = this.#items
    while (items.length > 0) {
      const j = randomBelow(this.#random, items.length)
      const out = items[j] as T
      const last = items.pop() as T
      if (j < items.length) items[j] = last
      this.emitted++
      yield out
    }
  }
}
