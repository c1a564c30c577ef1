/**
 * `OrderedRanges` and `RangeSlots` as pure logic, on sources in memory that the test feeds: bytes
 * in order whatever order the ranges arrive in, the window (the object's own connection plus the
 * call's free slots, shared between objects), nothing started before the first read, backpressure on
 * the range being delivered, and destroy or a failing range releasing every range and slot.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { OrderedRanges } from './ordered-ranges.js'
import type { ByteRange } from './range-plan.js'
import { RangeSlots, rangeSlotsFor } from './range-slots.js'

/** A range's source the test drives: it emits what it is fed, holding it while paused. */
class FedSource extends EventEmitter {
  paused = true
  destroyed = false
  #held: (Uint8Array | 'end')[] = []

  feed(text: string): this {
    this.#held.push(Buffer.from(text))
    this.#drain()
    return this
  }

  finish(): this {
    this.#held.push('end')
    this.#drain()
    return this
  }

  pause(): this {
    this.paused = true
    return this
  }

  resume(): this {
    this.paused = false
    this.#drain()
    return this
  }

  destroy(): void {
    this.destroyed = true
  }

  #drain(): void {
    while (!this.paused && !this.destroyed && this.#held.length > 0) {
      const next = this.#held.shift()
      if (next === 'end') this.emit('end')
      else this.emit('data', next)
    }
  }
}

interface Opened {
  range: ByteRange
  signal: AbortSignal
  source: FedSource
  answer: () => void
  refuse: (error: Error) => void
}

/** An object whose first answer is `first` and whose later ranges are opened as the test answers. */
function setup(rangeCount: number, slots = new RangeSlots(2), first = new FedSource()) {
  const opened: Opened[] = []
  const ranges = Array.from({ length: rangeCount }, (_, i) => ({ start: (i + 1) * 10, end: (i + 1) * 10 + 9 }))
  const open = (range: ByteRange, signal: AbortSignal) =>
    new Promise<FedSource>((resolve, reject) => {
      const source = new FedSource()
      opened.push({ range, signal, source, answer: () => resolve(source), refuse: reject })
    })
  const reader = new OrderedRanges(first, ranges, open, slots)
  const out: string[] = []
  const events: string[] = []
  reader.on('data', (chunk: Uint8Array) => out.push(Buffer.from(chunk).toString()))
  reader.on('end', () => events.push('end'))
  reader.on('error', (error: Error) => events.push(`error: ${error.message}`))
  return { reader, first, opened, slots, out, events }
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('OrderedRanges', () => {
  it('delivers the ranges in order whatever order they arrive in', async () => {
    const { reader, first, opened, out, events } = setup(3)
    reader.resume()
    // Own connection busy with the first answer: the two slots start ranges 1 and 2.
    expect(opened.map((o) => o.range.start)).toEqual([10, 20])
    for (const o of opened) o.answer()
    await settle()
    opened[1]?.source.feed('C').finish()
    opened[0]?.source.feed('B1').feed('B2')
    first.feed('A')
    expect(out).toEqual(['A'])
    first.finish()
    expect(out).toEqual(['A', 'B1', 'B2'])
    // Ranges 1's slot is still held until it is delivered: range 3 waits for the first answer's connection.
    expect(opened.map((o) => o.range.start)).toEqual([10, 20, 30])
    opened[0]?.source.finish()
    expect(out).toEqual(['A', 'B1', 'B2', 'C'])
    opened[2]?.answer()
    await settle()
    opened[2]?.source.feed('D').finish()
    expect(out.join('')).toBe('AB1B2CD')
    expect(events).toEqual(['end'])
  })

  it('starts nothing before the first read, and holds one range of its own plus the free slots', async () => {
    const slots = new RangeSlots(2)
    const { reader, first, opened } = setup(10, slots)
    await settle()
    expect(opened).toHaveLength(0)
    reader.resume()
    expect(opened).toHaveLength(2)
    expect(slots.free).toBe(0)
    for (const o of opened) o.answer()
    await settle()
    for (const o of opened) o.source.feed('x').finish()
    // Nothing more starts until the range being delivered (the first answer) is done.
    expect(opened).toHaveLength(2)
    expect(reader.inFlight).toBe(3)
    first.finish()
    // The first answer's connection and range 1's slot come free once delivered: ranges 3, 4 (and 5 when range 2 is).
    expect(opened.length).toBeGreaterThanOrEqual(4)
    expect(reader.inFlight).toBeLessThanOrEqual(3)
  })

  it('pauses the range being delivered while the reader is paused, and reads the others ahead', async () => {
    const { reader, first, opened, out } = setup(1)
    reader.resume()
    opened[0]?.answer()
    await settle()
    reader.pause()
    expect(first.paused).toBe(true)
    expect(opened[0]?.source.paused).toBe(false)
    first.feed('A')
    opened[0]?.source.feed('B').finish()
    expect(out).toEqual([])
    reader.resume()
    expect(first.paused).toBe(false)
    first.finish()
    expect(out).toEqual(['A', 'B'])
  })

  it('a reader that pauses in its data handler gets the rest only when it resumes', async () => {
    const { reader, first, opened, out } = setup(1)
    reader.on('data', () => reader.pause())
    reader.resume()
    opened[0]?.answer()
    await settle()
    opened[0]?.source.feed('B').feed('C').finish()
    first.feed('A').finish()
    expect(out).toEqual(['A'])
    reader.resume()
    expect(out).toEqual(['A', 'B'])
    reader.resume()
    expect(out).toEqual(['A', 'B', 'C'])
  })

  it('destroy aborts the ranges being opened, destroys those open, and gives every slot back', async () => {
    const slots = new RangeSlots(3)
    const { reader, first, opened, events } = setup(6, slots)
    reader.resume()
    expect(opened).toHaveLength(3)
    opened[0]?.answer()
    await settle()
    reader.destroy()
    expect(first.destroyed).toBe(true)
    expect(opened[0]?.source.destroyed).toBe(true)
    expect(opened.every((o) => o.signal.aborted)).toBe(true)
    expect(slots.free).toBe(3)
    // Answers that come after are closed at once.
    opened[1]?.answer()
    opened[2]?.refuse(new Error('aborted'))
    await settle()
    expect(opened[1]?.source.destroyed).toBe(true)
    expect(events).toEqual([])
    expect(slots.free).toBe(3)
  })

  it('a range that fails fails the read once and releases the rest', async () => {
    const slots = new RangeSlots(2)
    const { reader, first, opened, events } = setup(4, slots)
    reader.resume()
    opened[0]?.answer()
    await settle()
    opened[1]?.refuse(new Error('the object changed'))
    await settle()
    expect(events).toEqual(['error: the object changed'])
    expect(first.destroyed).toBe(true)
    expect(opened[0]?.source.destroyed).toBe(true)
    expect(slots.free).toBe(2)
    opened[0]?.source.emit('error', new Error('late'))
    expect(events).toHaveLength(1)
  })

  it('objects of one call share its slots: the first to ask is served first, then the next', async () => {
    const slots = new RangeSlots(1)
    const a = setup(2, slots)
    const b = setup(3, slots)
    a.reader.resume()
    b.reader.resume()
    expect(a.opened).toHaveLength(1)
    expect(b.opened).toHaveLength(0)
    a.opened[0]?.answer()
    await settle()
    a.opened[0]?.source.feed('x').finish()
    a.first.finish()
    // a's own connection took its last range; the slot its range 1 gave back went to b, which was waiting.
    expect(a.opened.map((o) => o.range.start)).toEqual([10, 20])
    expect(b.opened.map((o) => o.range.start)).toEqual([10])
    expect(slots.free).toBe(0)
    // b goes on with its own connection meanwhile: it is never blocked by a.
    b.first.finish()
    expect(b.opened.map((o) => o.range.start)).toEqual([10, 20])
    b.opened[0]?.answer()
    await settle()
    b.opened[0]?.source.finish()
    expect(b.opened.map((o) => o.range.start)).toEqual([10, 20, 30])
    a.reader.destroy()
    b.reader.destroy()
    expect(slots.free).toBe(1)
  })
})

describe('RangeSlots', () => {
  it('never hands out more than its capacity and refuses a slot given back twice', () => {
    const slots = new RangeSlots(2)
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false])
    slots.give()
    slots.give()
    expect(() => slots.give()).toThrow(/given back twice/)
  })

  it('keeps one set of slots per owner', () => {
    const owner = {}
    expect(rangeSlotsFor(owner, 4)).toBe(rangeSlotsFor(owner, 4))
    expect(rangeSlotsFor({}, 4)).not.toBe(rangeSlotsFor(owner, 4))
  })
})
