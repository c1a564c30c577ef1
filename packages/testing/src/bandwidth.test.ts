/**
 * The token bucket and the paced stream of the proxy's bandwidth cap, on bytes in memory: every
 * byte goes through in order, and the releases they record never exceed the bucket's allowance
 * over any stretch of time. Asserted on the bucket's own schedule (and a lower bound on the time a
 * transfer takes, which load can only lengthen), never on an upper bound of time.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { defaultBurstBytes, holdUntil, largestBurst, type PacedSlice, pacedStream, TokenBucket } from './bandwidth.js'

describe('TokenBucket', () => {
  it('lets a full bucket through at once, then paces what follows at its rate', async () => {
    const bucket = new TokenBucket(1_000_000, 50_000)
    const start = performance.now()
    const times: number[] = []
    for (let i = 0; i < 12; i++) times.push(await bucket.take(25_000))
    // 300,000 bytes: the first 50,000 from the full bucket, the other 250,000 at 1 MB/s, so the
    // last release is at least 250 ms after the bucket was made.
    expect((times.at(-1) as number) - bucket.createdAt).toBeGreaterThanOrEqual(250)
    expect(performance.now() - start).toBeGreaterThanOrEqual(250)
    const slices = times.map((at) => ({ at, bytes: 25_000 }))
    // Float rounding in the token arithmetic may show as a fraction of a byte.
    expect(largestBurst(slices, 1_000_000)).toBeLessThanOrEqual(50_000 + 1)
    // Releases are in order.
    expect(times).toStrictEqual([...times].sort((a, b) => a - b))
  })

  it('serves concurrent takers one after the other, within the same allowance', async () => {
    const bucket = new TokenBucket(2_000_000, 20_000)
    const times = await Promise.all(Array.from({ length: 20 }, () => bucket.take(10_000)))
    expect(times).toStrictEqual([...times].sort((a, b) => a - b))
    expect(
      largestBurst(
        times.map((at) => ({ at, bytes: 10_000 })),
        2_000_000,
      ),
    ).toBeLessThanOrEqual(20_000 + 1)
    // 200,000 bytes, 20,000 of them at once: at least 90 ms.
    expect((times.at(-1) as number) - bucket.createdAt).toBeGreaterThanOrEqual(90)
  })

  it('refuses to take more than it can hold', () => {
    const bucket = new TokenBucket(1000, 100)
    expect(() => bucket.take(101)).toThrow(RangeError)
  })

  it('holdUntil never returns before its deadline', async () => {
    for (const ms of [1, 3, 7]) {
      const deadline = performance.now() + ms
      await holdUntil(deadline)
      expect(performance.now()).toBeGreaterThanOrEqual(deadline)
    }
  })

  it('the default burst is 20 ms of the rate, at least 64 KiB', () => {
    expect(defaultBurstBytes(25e6)).toBe(500_000)
    expect(defaultBurstBytes(1e6)).toBe(64 * 1024)
  })
})

describe('pacedStream', () => {
  it('passes every byte through in order, in slices the bucket allowed', async () => {
    const data = randomBytes(300_000)
    const chunks = [data.subarray(0, 100_000), data.subarray(100_000, 100_001), data.subarray(100_001)]
    const bucket = new TokenBucket(3_000_000, 64 * 1024)
    const released: PacedSlice[] = []
    const paced = pacedStream(bucket, released)
    const out = buffer(paced)
    await pipeline(Readable.from(chunks), paced)
    expect(Buffer.compare(await out, data)).toBe(0)
    expect(released.reduce((sum, slice) => sum + slice.bytes, 0)).toBe(data.byteLength)
    expect(Math.max(...released.map((slice) => slice.bytes))).toBeLessThanOrEqual(16 * 1024)
    expect(largestBurst(released, 3_000_000)).toBeLessThanOrEqual(64 * 1024 + 1)
    // (300,000 - 65,536) bytes at 3 MB/s: at least 78 ms from the bucket's making to the last release.
    expect((released.at(-1) as PacedSlice).at - bucket.createdAt).toBeGreaterThanOrEqual(78)
  })

  it('stops releasing once destroyed', async () => {
    const bucket = new TokenBucket(100_000, 16 * 1024)
    const released: PacedSlice[] = []
    const paced = pacedStream(bucket, released)
    paced.on('error', () => {})
    paced.resume()
    paced.write(Buffer.alloc(160 * 1024))
    while (released.length === 0) await new Promise((resolve) => setImmediate(resolve))
    paced.destroy()
    const count = released.length
    await holdUntil(performance.now() + 400)
    // At most the slice that was waiting for tokens when it was destroyed.
    expect(released.length).toBeLessThanOrEqual(count + 1)
  })
})
