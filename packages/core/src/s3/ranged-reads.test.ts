/**
 * Parallel ranged reads against S3, through the proxy of `@s3exchange/testing` (its request log
 * shows every GET's `range` and `if-match`; it holds GETs 30 ms, so GETs in flight together
 * overlap in the log, and it cuts bodies on request): the bytes, the ranges asked for and how many
 * at once, `If-Match` on every range after the first, small objects as one GET, ranged member
 * reads, an object replaced mid-read, a range cut mid-body resumed, and cancellation (abort, or
 * leaving the body unread) releasing every range and slot.
 */
import { randomBytes } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import type { ProxiedRequest, ProxyAction, RecordedRequest } from '@s3exchange/testing'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { ObjectChangedError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { getObjectBody, openObjectSource } from './object-source.js'
import type { RangedReadOptions } from './range-plan.js'
import { rangeSlotsFor } from './range-slots.js'
import { unquoteEtag } from './requests.js'

const KiB = 1024
const RANGE = 64 * KiB
const s3 = useTestS3()
let fault: ((request: ProxiedRequest) => ProxyAction | undefined) | undefined
const via = useS3Proxy(s3, {
  latencyMs: (request) => (request.method === 'GET' ? 30 : 0),
  intercept: (request) => fault?.(request),
})

let big: Buffer
let bigKey: string
let bigEtag: string

async function put(key: string, bytes: Uint8Array): Promise<string> {
  const answer = await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }))
  return unquoteEtag(answer.ETag as string)
}

/** A context through the proxy with ranged reads of its own (and so slots of its own). */
function rangedCtx(ranges: RangedReadOptions = { rangeSize: RANGE, rangeConcurrency: 3 }, signal?: AbortSignal): S3Context {
  return { client: via.client, bucket: s3.bucket, ranges, signal }
}

/** The GETs of `key` the proxy saw since `mark`, by the first byte they asked for (ranges in flight together arrive in any order). */
function getsOf(key: string, mark: number): RecordedRequest[] {
  const firstByte = (r: RecordedRequest) => Number(/^bytes=(\d+)-/.exec(String(r.headers.range))?.[1] ?? -1)
  return via.proxy.requests
    .slice(mark)
    .filter((r) => r.method === 'GET' && decodeURIComponent(r.url.split('?')[0] ?? '').endsWith(`/${key}`))
    .sort((a, b) => firstByte(a) - firstByte(b))
}

/** The most GETs held by the proxy at one moment: each one's [arrived, answered] against the others'. */
function mostAtOnce(requests: RecordedRequest[]): number {
  let most = 0
  for (const a of requests) {
    const at = a.receivedAt
    most = Math.max(most, requests.filter((b) => b.receivedAt <= at && (b.respondedAt ?? Number.POSITIVE_INFINITY) > at).length)
  }
  return most
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100))

beforeAll(async () => {
  big = randomBytes(20 * RANGE + 12_345)
  bigKey = s3.key('big.bin')
  bigEtag = await put(bigKey, big)
})

describe('a large object', () => {
  it('comes back byte for byte, as consecutive ranges fetched several at once, each after the first pinned with If-Match', async () => {
    const mark = via.proxy.requests.length
    const body = await getObjectBody(rangedCtx(), bigKey)
    expect(body.size).toBe(big.length)
    expect(body.etag).toBe(bigEtag)
    expect(Buffer.from(await body.bytes()).equals(big)).toBe(true)

    const gets = getsOf(bigKey, mark)
    // The GET of the whole object (closed after its first RANGE bytes), then the rest in ranges of RANGE bytes.
    expect(gets[0]?.headers.range).toBeUndefined()
    expect(gets[0]?.headers['if-match']).toBeUndefined()
    let next = RANGE
    for (const get of gets.slice(1)) {
      expect(get.headers.range).toBe(`bytes=${next}-${Math.min(next + RANGE, big.length) - 1}`)
      expect(unquoteEtag(String(get.headers['if-match']))).toBe(bigEtag)
      next += RANGE
    }
    expect(next).toBeGreaterThanOrEqual(big.length)
    expect(gets).toHaveLength(1 + Math.ceil((big.length - RANGE) / RANGE))
    // rangeConcurrency 3: three ranges at once beside the object's own GET, never more.
    const most = mostAtOnce(gets)
    expect(most).toBeGreaterThanOrEqual(3)
    expect(most).toBeLessThanOrEqual(4)
  })

  it('is read with one GET per range when read as a stream, and rangeConcurrency 0 reads it with one plain GET', async () => {
    let mark = via.proxy.requests.length
    const chunks: Buffer[] = []
    for await (const chunk of await getObjectBody(rangedCtx({ rangeSize: RANGE, rangeConcurrency: 2 }), bigKey))
      chunks.push(chunk as Buffer)
    expect(Buffer.concat(chunks).equals(big)).toBe(true)
    expect(mostAtOnce(getsOf(bigKey, mark))).toBeLessThanOrEqual(3)

    mark = via.proxy.requests.length
    const plain = await getObjectBody(rangedCtx({ rangeSize: RANGE, rangeConcurrency: 0 }), bigKey)
    expect(Buffer.from(await plain.bytes()).equals(big)).toBe(true)
    const gets = getsOf(bigKey, mark)
    expect(gets).toHaveLength(1)
    expect(gets[0]?.headers.range).toBeUndefined()
  })

  it('a part of it (a member read) is split the same way within the bounds asked for', async () => {
    const mark = via.proxy.requests.length
    const start = 3 * RANGE + 17
    const end = 9 * RANGE + 4
    const body = await getObjectBody(rangedCtx(), bigKey, { start, end, ifMatch: bigEtag })
    expect(body.size).toBe(end - start + 1)
    expect(Buffer.from(await body.bytes()).equals(big.subarray(start, end + 1))).toBe(true)
    const gets = getsOf(bigKey, mark)
    // The length is known: the first GET asks for the first range only.
    expect(gets.map((g) => g.headers.range)).toEqual([
      `bytes=${start}-${start + RANGE - 1}`,
      `bytes=${start + RANGE}-${start + 2 * RANGE - 1}`,
      `bytes=${start + 2 * RANGE}-${start + 3 * RANGE - 1}`,
      `bytes=${start + 3 * RANGE}-${start + 4 * RANGE - 1}`,
      `bytes=${start + 4 * RANGE}-${start + 5 * RANGE - 1}`,
      `bytes=${start + 5 * RANGE}-${end}`,
    ])
    expect(gets.every((g) => unquoteEtag(String(g.headers['if-match'])) === bigEtag)).toBe(true)
  })
})

describe('a small object', () => {
  it('no larger than two ranges is one plain GET, as without ranged reads', async () => {
    const small = randomBytes(2 * RANGE)
    const key = s3.key('small.bin')
    await put(key, small)
    const mark = via.proxy.requests.length
    const body = await getObjectBody(rangedCtx(), key)
    expect(body.size).toBe(small.length)
    expect(Buffer.from(await body.bytes()).equals(small)).toBe(true)
    const gets = getsOf(key, mark)
    expect(gets).toHaveLength(1)
    expect(gets[0]?.headers.range).toBeUndefined()
  })

  it('a range of it no larger than two ranges is one GET of that range', async () => {
    const mark = via.proxy.requests.length
    const { info, source } = await openObjectSource(rangedCtx(), bigKey, { start: 10, end: 2 * RANGE + 9 })
    source.destroy()
    expect(info.size).toBe(2 * RANGE)
    expect(getsOf(bigKey, mark).map((g) => g.headers.range)).toEqual([`bytes=10-${2 * RANGE + 9}`])
  })

  it('that is empty reads as empty', async () => {
    const key = s3.key('empty.bin')
    await put(key, new Uint8Array(0))
    const body = await getObjectBody(rangedCtx(), key)
    expect(body.size).toBe(0)
    expect((await body.bytes()).byteLength).toBe(0)
  })
})

describe('faults', () => {
  it('an object replaced in the middle of the read fails it with ObjectChangedError', async () => {
    const key = s3.key('replaced.bin')
    await put(key, big)
    const body = await getObjectBody(rangedCtx({ rangeSize: RANGE, rangeConcurrency: 1 }), key)
    const reading = body[Symbol.asyncIterator]()
    const first = await reading.next()
    expect(first.done).toBe(false)
    await put(key, randomBytes(big.length))
    const rest = (async () => {
      for (let step = await reading.next(); !step.done; step = await reading.next());
    })()
    await expect(rest).rejects.toBeInstanceOf(ObjectChangedError)
    await expect(rest).rejects.toThrow(key)
  })

  it('a range cut mid-body is resumed from the byte it broke at, pinned to the ETag', async () => {
    const cutAt = 5 * RANGE
    let cut = 0
    fault = (request) => {
      if (request.method === 'GET' && request.headers.range === `bytes=${cutAt}-${cutAt + RANGE - 1}` && cut++ === 0) {
        return { resetAfterBytes: 1000 }
      }
      return undefined
    }
    try {
      const resetsBefore = via.proxy.resets
      const mark = via.proxy.requests.length
      const body = await getObjectBody(rangedCtx(), bigKey)
      expect(Buffer.from(await body.bytes()).equals(big)).toBe(true)
      expect(via.proxy.resets).toBe(resetsBefore + 1)
      const resumed = getsOf(bigKey, mark).filter((g) => g.headers.range === `bytes=${cutAt + 1000}-${cutAt + RANGE - 1}`)
      expect(resumed).toHaveLength(1)
      expect(unquoteEtag(String(resumed[0]?.headers['if-match']))).toBe(bigEtag)
    } finally {
      fault = undefined
    }
  })

  it('aborting the read releases every range: the read fails with the reason, every slot is free, no range is asked for after', async () => {
    const abort = new AbortController()
    const ranges = { rangeSize: RANGE, rangeConcurrency: 3 }
    const mark = via.proxy.requests.length
    const body = await getObjectBody(rangedCtx(ranges, abort.signal), bigKey)
    const reading = body[Symbol.asyncIterator]()
    await reading.next()
    const reason = new Error('stop here')
    abort.abort(reason)
    const rest = (async () => {
      for (let step = await reading.next(); !step.done; step = await reading.next());
    })()
    await expect(rest).rejects.toBe(reason)
    expect(rangeSlotsFor(ranges, 3).free).toBe(3)
    await settle()
    // The first answer, and at most the window's ranges (3 slots + the object's own GET): none after.
    const sent = getsOf(bigKey, mark).length
    expect(sent).toBeLessThanOrEqual(5)
    await settle()
    expect(getsOf(bigKey, mark)).toHaveLength(sent)
  })

  it('leaving the loop early releases every range and slot, and no range is asked for after', async () => {
    const ranges = { rangeSize: RANGE, rangeConcurrency: 3 }
    const mark = via.proxy.requests.length
    const body = await getObjectBody(rangedCtx(ranges), bigKey)
    let seen = 0
    for await (const chunk of body) {
      seen += (chunk as Buffer).length
      if (seen > 3 * RANGE) break
    }
    expect(body.destroyed).toBe(true)
    expect(rangeSlotsFor(ranges, 3).free).toBe(3)
    await settle()
    // Bytes up to the fourth range were read: the ranges asked for stop within the window after it (of 20).
    const sent = getsOf(bigKey, mark).length
    expect(sent).toBeLessThanOrEqual(9)
    await settle()
    expect(getsOf(bigKey, mark)).toHaveLength(sent)
  })
})
