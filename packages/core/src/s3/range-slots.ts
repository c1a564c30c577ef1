/**
 * `RangeSlots`: the ranged GETs a call may run at once beside each object's own GET, shared by
 * every large object the call reads (see `RangedReadOptions.rangeConcurrency`). A reader takes a
 * slot only when one is free and never waits for one (it can always go on with its own GET), so
 * objects read ahead can slow the one being read but never block it. One set of slots belongs to
 * one `ranges` object of an `S3Context`: the store makes a new one per call.
 *
 * @example
 * ```ts
 * import { rangeSlotsFor } from '@s3exchange/core/internals'
 *
 * const slots = rangeSlotsFor(ctx.ranges, 4)
 * if (slots.tryTake()) { … start a ranged GET …; slots.give() when its bytes are delivered }
 * const stop = slots.onFree(() => …)   // try again when another reader gives one back
 * ```
 */

/** A counter of free slots with listeners told when one is given back; see the module comment. */
export class RangeSlots {
  readonly capacity: number
  #free: number
  readonly #listeners = new Set<() => void>()

  constructor(capacity: number) {
    this.capacity = capacity
    this.#free = capacity
  }

  /** Slots not taken. */
  get free(): number {
    return this.#free
  }

  /** Takes a slot when one is free; never waits. */
  tryTake(): boolean {
    if (this.#free <= 0) return false
    this.#free--
    return true
  }

  /** Gives a slot back and tells the listeners, each of which may take it. */
  give(): void {
    if (this.#free >= this.capacity) throw new Error('RangeSlots: a slot was given back twice')
    this.#free++
    for (const listener of [...this.#listeners]) {
      if (this.#free <= 0) break
      listener()
    }
  }

  /** Calls `listener` whenever a slot is given back, until the returned function is called. */
  onFree(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }
}

const slotsByOwner = new WeakMap<object, RangeSlots>()

/** The slots of `owner` (a context's `ranges` object), made with `capacity` on first use. */
export function rangeSlotsFor(owner: object, capacity: number): RangeSlots {
  let slots = slotsByOwner.get(owner)
  if (slots === undefined) {
    slots = new RangeSlots(capacity)
    slotsByOwner.set(owner, slots)
  }
  return slots
}
