/**
 * `OrderedRanges`: one byte stream out of consecutive ranges of an object fetched several at once,
 * delivered in order with a bounded window. The range being delivered streams straight through
 * (and is paused when the reader is); the ranges after it are fetched ahead into memory, each by
 * the object's own connection when it is free or by a slot of the call's `RangeSlots`, held until
 * that range has been delivered. So one object holds at most one range of its own and the call's
 * slots' worth of ranges, and no range starts before the reader first asks for bytes. Destroying
 * it (or a failure of any range) aborts every range in flight and gives every slot back.
 *
 * Knows nothing of S3: `open` fetches a range (in `object-source.ts`, a resumable GET pinned to
 * the object's ETag), so the ordering and the window are tested on sources in memory.
 *
 * @example
 * ```ts
 * import { OrderedRanges, RangeSlots } from '@s3exchange/core/internals'
 *
 * const source = new OrderedRanges(firstSource, [{ start: 16, end: 23 }, { start: 24, end: 31 }], openRange, new RangeSlots(4))
 * source.on('data', (chunk) => …); source.on('end', …); source.on('error', …); source.resume()
 * ```
 */
import { EventEmitter } from 'node:events'
import type { ByteSource } from './body.js'
import type { ByteRange } from './range-plan.js'
import type { RangeSlots } from './range-slots.js'

/** A source of one range's bytes: a `ByteSource` that can be destroyed (closing its connection). */
export interface RangeSource extends ByteSource {
  destroy(): void
}

/** Opens the GET of one range; `signal` is aborted when the range is no longer wanted. */
export type OpenRange = (range: ByteRange, signal: AbortSignal) => Promise<RangeSource>

interface Part {
  /** Whose connection fetches it: the object's own, or a slot of the call's. */
  holder: 'own' | 'slot'
  source: RangeSource | undefined
  /** Bytes received and not yet delivered. */
  chunks: Uint8Array[]
  ended: boolean
  abort: AbortController | undefined
}

/** See the module comment. It starts paused and has the surface `ObjectBody` wraps. */
export class OrderedRanges extends EventEmitter implements RangeSource {
  readonly #ranges: ByteRange[]
  readonly #open: OpenRange
  readonly #slots: RangeSlots
  readonly #signal: AbortSignal | undefined
  /** parts[0] is the first answer; parts[i] fetches ranges[i - 1]. */
  readonly #parts: (Part | undefined)[]
  #current = 0
  #next = 1
  #ownFree = false
  #started = false
  #paused = true
  #finished = false
  #flushing = false
  #stopListening: (() => void) | undefined

  /**
   * @param first the source of the first range, already answered (it holds the object's own connection)
   * @param ranges the ranges after it, in order
   * @param open fetches one of them
   * @param slots the call's shared slots for ranges beyond the object's own connection
   * @param signal the caller's signal: aborting it aborts every range
   */
  constructor(first: RangeSource, ranges: ByteRange[], open: OpenRange, slots: RangeSlots, signal?: AbortSignal) {
    super()
    this.#ranges = ranges
    this.#open = open
    this.#slots = slots
    this.#signal = signal
    this.#parts = new Array(ranges.length + 1)
    const part: Part = { holder: 'own', source: first, chunks: [], ended: false, abort: undefined }
    this.#parts[0] = part
    this.#attach(0, part, first)
  }

  /** Ranges started and not yet delivered (the first answer included), for tests and diagnostics. */
  get inFlight(): number {
    return this.#parts.filter((part) => part !== undefined).length
  }

  pause(): this {
    this.#paused = true
    this.#parts[this.#current]?.source?.pause()
    return this
  }

  resume(): this {
    if (this.#finished) return this
    this.#paused = false
    if (!this.#started) {
      this.#started = true
      this.#fill()
    }
    this.#parts[this.#current]?.source?.resume()
    this.#flush()
    return this
  }

  /** Stops reading: every range in flight is aborted and closed, every slot given back. */
  destroy(): void {
    if (this.#finished) return
    this.#finished = true
    this.#release()
  }

  #attach(index: number, part: Part, source: RangeSource): void {
    source.on('data', (chunk: Uint8Array) => {
      if (this.#finished || this.#parts[index] !== part) return
      if (index === this.#current && !this.#paused && part.chunks.length === 0 && !this.#flushing) this.emit('data', chunk)
      else {
        part.chunks.push(chunk)
        if (index === this.#current) this.#flush()
      }
    })
    source.on('end', () => {
      if (this.#finished || this.#parts[index] !== part) return
      part.ended = true
      if (index === this.#current) this.#flush()
    })
    source.on('error', (error: Error) => this.#fail(error))
    // Only the range being delivered waits for the reader; the others are read ahead into memory.
    if (index === this.#current && this.#paused) source.pause()
    else source.resume()
  }

  /** Starts the next ranges while the object's own connection or a slot of the call's is free. */
  #fill(): void {
    if (!this.#started || this.#finished) return
    while (this.#next < this.#parts.length) {
      let holder: Part['holder']
      if (this.#ownFree) {
        this.#ownFree = false
        holder = 'own'
      } else if (this.#slots.tryTake()) holder = 'slot'
      else break
      this.#start(this.#next++, holder)
    }
    if (this.#next < this.#parts.length) this.#stopListening ??= this.#slots.onFree(() => this.#fill())
    else this.#unlisten()
  }

  #start(index: number, holder: Part['holder']): void {
    const abort = new AbortController()
    const signal = this.#signal ? AbortSignal.any([this.#signal, abort.signal]) : abort.signal
    const part: Part = { holder, source: undefined, chunks: [], ended: false, abort }
    this.#parts[index] = part
    const range = this.#ranges[index - 1] as ByteRange
    this.#open(range, signal).then(
      (source) => {
        if (this.#finished || this.#parts[index] !== part) {
          source.on('error', ignore)
          source.destroy()
          return
        }
        part.source = source
        this.#attach(index, part, source)
      },
      (error: unknown) => this.#fail(error instanceof Error ? error : new Error(String(error))),
    )
  }

  /** Delivers what the reader can take, in order, moving to the next range as each ends. */
  #flush(): void {
    if (this.#flushing) return
    this.#flushing = true
    try {
      while (!this.#finished && !this.#paused) {
        const part = this.#parts[this.#current]
        if (part === undefined) break
        const chunk = part.chunks.shift()
        if (chunk !== undefined) {
          this.emit('data', chunk)
          continue
        }
        if (!part.ended) break
        this.#parts[this.#current] = undefined
        this.#current++
        this.#giveBack(part)
        if (this.#current === this.#parts.length) {
          this.#finished = true
          this.#unlisten()
          this.emit('end')
          return
        }
        this.#fill()
        this.#parts[this.#current]?.source?.resume()
      }
    } finally {
      this.#flushing = false
    }
  }

  #giveBack(part: Part): void {
    if (part.holder === 'own') this.#ownFree = true
    else this.#slots.give()
  }

  #fail(error: Error): void {
    if (this.#finished) return
    this.#finished = true
    this.#release()
    this.emit('error', error)
  }

  #unlisten(): void {
    this.#stopListening?.()
    this.#stopListening = undefined
  }

  #release(): void {
    this.#unlisten()
    for (let index = 0; index < this.#parts.length; index++) {
      const part = this.#parts[index]
      if (part === undefined) continue
      this.#parts[index] = undefined
      part.abort?.abort()
      if (part.source) {
        part.source.on('error', ignore)
        part.source.destroy()
      }
      part.chunks = []
      if (part.holder === 'slot') this.#slots.give()
    }
  }
}

function ignore(): void {}
