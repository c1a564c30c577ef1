/**
 * Shard prefetch (`expandShards(ctx, { bodies: true, shardConcurrency, maxBufferedBytes })`):
 * output identical to one archive at a time (entries, bytes, order), with any budget; later
 * archives read while the first is consumed, never more than `shardConcurrency` at once; a missing
 * archive fails in its turn; breaking out closes every GET; lazily read head-shard bodies; a long
 * run of loose entries is not read ahead whole. GETs are watched through SDK middleware.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { S3Client } from '@aws-sdk/client-s3'
import { rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ShardWriter } from '../archive/shard-writer.js'
import type { FileEntry, ManifestEntry, ShardEntry } from '../format/entries.js'
import { BodyConsumedError, ObjectChangedError, ObjectNotFoundError, ShardReadError } from '../format/errors.js'
import type { EntryWithBody, PipelineItem } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { type ExpandShardsOptions, expandShards } from './expand-shards.js'

const s3 = useTestS3()
const KiB = 1024

/** A GET as the SDK saw it: its key, its answer, and when its body is over (read to the end or destroyed). */
interface TrackedGet {
  key: string
  ifMatch: string | undefined
  status: number | undefined
  body: Readable | undefined
  done: boolean
  closed: Promise<void>
}

/** Watches every GetObject of `client`: a GET is running until its response body closes (or it fails). */
function trackGets(client: S3Client): TrackedGet[] {
  const gets: TrackedGet[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetObjectCommand') return next(args)
      let settle = () => {}
      const get: TrackedGet = {
        key: (args.input as { Key: string }).Key,
        ifMatch: (args.input as { IfMatch?: string }).IfMatch,
        status: undefined,
        body: undefined,
        done: false,
        closed: new Promise<void>((resolve) => {
          settle = resolve
        }),
      }
      const finish = () => {
        get.done = true
        settle()
      }
      gets.push(get)
      try {
        const result = await next(args)
        const response = result.response as { statusCode?: number; body?: Readable }
        get.status = response.statusCode
        const body = response.body
        get.body = body
        if (!body || body.closed) finish()
        else body.once('close', finish)
        return result
      } catch (error) {
        get.status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
        finish()
        throw error
      }
    },
    { step: 'deserialize', name: `track-gets-${Math.random()}` },
  )
  return gets
}

interface Spec {
  path: string
  data: Buffer
}

interface Fixture {
  entry: ShardEntry
  members: Spec[]
}

let client: S3Client
let ctx: S3Context
let gets: TrackedGet[]
const fixtures: Fixture[] = []
let items: ManifestEntry[]
let reference: Out[]
const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** What came out, comparable across runs. */
type Out = { loose: ManifestEntry } | { entry: FileEntry; sha: string; size: number | undefined; buffered: boolean }

const SIZES = [300, 5000, 120 * KiB, 700, 513, 64 * KiB + 1, 10, 0, 30 * KiB]

beforeAll(async () => {
  client = s3.s3.createClient()
  ctx = { client, bucket: s3.bucket }
  gets = trackGets(client)
  const direct = { client: s3.client, bucket: s3.bucket }
  for (let i = 0; i < 8; i++) {
    // gzip (seekable) and plain tars, and one continuous gzip stream.
    const compression = i % 2 === 0 ? 'gzip' : null
    const key = s3.key(`prefetch/shard-${i}.tar${compression ? '.gz' : ''}`)
    const writer = new ShardWriter(direct, key, { compression, ...(i === 4 ? { seekable: false } : {}) })
    const members: Spec[] = []
    for (let j = 0; j < 3 + (i % 4); j++) {
      // Odd shards have a member larger than what the streams between S3 and the tar reader buffer:
      // a shard left half read keeps its GET open.
      const size = j === 1 && i % 2 === 1 ? 1536 * KiB : (SIZES[(i + j * 3) % SIZES.length] as number)
      const data = j % 2 === 0 ? randomBytes(size) : Buffer.from('compressible text '.repeat(size).slice(0, size))
      const spec = { path: `s${i}/m${j}-${size}${i === 3 && j === 1 ? '-ünï 🎧' : ''}.bin`, data }
      members.push(spec)
      await writer.add({ source: spec.data, member_path: spec.path, id: `${i}-${j}`, meta: { i, j } })
    }
    fixtures.push({ entry: await writer.finish(), members })
  }
  const loose = (name: string): ManifestEntry => ({ kind: 'file', key: s3.key(`loose/${name}`), size_bytes: 1 })
  const [s0, s1, s2, s3_, s4, s5, s6, s7] = fixtures.map((fixture) => fixture.entry)
  items = [loose('a'), s0, s1, loose('b'), loose('c'), s2, s3_, s4, loose('d'), s5, s6, s7, loose('e')] as ManifestEntry[]
  reference = await run(items, { shardConcurrency: 1 })
})

afterAll(() => {
  client?.destroy()
})

function isMember(item: PipelineItem): item is EntryWithBody<FileEntry> {
  return (item as { kind?: unknown }).kind === undefined
}

async function outOf(item: PipelineItem): Promise<Out> {
  if (!isMember(item)) return { loose: item as ManifestEntry }
  const buffered = item.body.buffered
  return { entry: item.entry, sha: sha(await item.body.bytes()), size: item.body.size, buffered }
}

/** Runs the stage over `input`, reading every body in turn. */
async function run(input: ManifestEntry[], options: Omit<ExpandShardsOptions, 'bodies'>): Promise<Out[]> {
  const out: Out[] = []
  for await (const item of expandShards(ctx, { bodies: true, ...options })(input)) out.push(await outOf(item))
  return out
}

const withoutBuffered = (out: Out[]) => out.map((item) => ('loose' in item ? item : { ...item, buffered: undefined }))
const keyOf = (i: number) => fixtures[i]?.entry.archive_key as string

describe('the reference run (one archive at a time)', () => {
  it('gives every member of every shard, in manifest order, with its bytes, loose entries passed through', () => {
    const expected: unknown[] = []
    for (const item of items) {
      if (item.kind !== 'shard') expected.push({ loose: item })
      else {
        const fixture = fixtures.find((f) => f.entry.archive_key === item.archive_key) as Fixture
        for (const member of fixture.members) {
          expected.push({
            entry: expect.objectContaining({ member_path: member.path, archive_key: item.archive_key, size_bytes: member.data.byteLength }),
            sha: sha(member.data),
            size: member.data.byteLength,
            buffered: false,
          })
        }
      }
    }
    expect(reference).toEqual(expected)
  })
})

describe.each([
  { shardConcurrency: 2, maxBufferedBytes: undefined },
  { shardConcurrency: 4, maxBufferedBytes: undefined },
  { shardConcurrency: 16, maxBufferedBytes: undefined },
  { shardConcurrency: 4, maxBufferedBytes: 200 * KiB },
  { shardConcurrency: 4, maxBufferedBytes: 1 },
  { shardConcurrency: 8, maxBufferedBytes: 1 },
])('shardConcurrency $shardConcurrency, maxBufferedBytes $maxBufferedBytes', (options) => {
  it('the same output as one archive at a time: entries, bytes, order', async () => {
    const out = await run(items, options)
    expect(withoutBuffered(out)).toEqual(withoutBuffered(reference))
    const members = out.filter((item) => 'entry' in item)
    if (options.maxBufferedBytes === 1) {
      // Nothing (but empty members) fits in one byte: every member streamed live.
      for (const member of members) if ((member.size as number) > 1) expect(member.buffered, member.entry.member_path).toBe(false)
    } else {
      // Members of shards read ahead were held in memory.
      expect(members.some((member) => member.buffered)).toBe(true)
    }
  })
})

/** Resolves once `condition` holds (polled; no time limit of its own). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

/** Steps through the stage by hand. */
function stepper(input: ManifestEntry[], options: Omit<ExpandShardsOptions, 'bodies'>) {
  const iterator = expandShards(ctx, { bodies: true, ...options })(input)[Symbol.asyncIterator]()
  return {
    iterator,
    async next(): Promise<PipelineItem> {
      const next = await iterator.next()
      if (next.done) throw new Error('ended early')
      return next.value
    },
    async rest(): Promise<Out[]> {
      const out: Out[] = []
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) out.push(await outOf(next.value))
      return out
    },
  }
}

describe('reading ahead', () => {
  it('concurrency 4: shards 1-3 are fetched, their members held in memory, while shard 0 is still being read; never more', async () => {
    const mark = gets.length
    const run = stepper(items, { shardConcurrency: 4 })
    const out: Out[] = [await outOf(await run.next())] // loose 'a'
    const first = await run.next() // shard 0, member 0: hold it unread for now
    expect(isMember(first) && first.entry.archive_key).toBe(keyOf(0))
    const since = () => gets.slice(mark)
    // The three next shards are requested, and read to their end into the budget, before shard 0 goes on.
    await vi.waitFor(
      () => {
        for (const i of [1, 2, 3]) expect(since().some((get) => get.key === keyOf(i) && get.done)).toBe(true)
      },
      { timeout: 20_000, interval: 5 },
    )
    // Never more than shardConcurrency archives at once: shard 4 waits for shard 0 to be done.
    expect(since().filter((get) => get.key === keyOf(4))).toEqual([])
    expect(since().filter((get) => get.key === keyOf(0))).toHaveLength(1)
    out.push(await outOf(first))
    out.push(...(await run.rest()))
    expect(withoutBuffered(out)).toEqual(withoutBuffered(reference))
    // Shards 1 and 3 were read to their end before their turn; the GET could only end once their
    // 1.5 MiB second member was being read into memory, so their first member was held in memory.
    for (const i of [1, 3]) {
      const members = out.filter((item) => 'entry' in item && item.entry.archive_key === keyOf(i))
      expect(members.length).toBe(fixtures[i]?.members.length)
      expect('buffered' in (members[0] as Out) && (members[0] as { buffered: boolean }).buffered).toBe(true)
    }
    // Each archive was read once.
    for (let i = 0; i < 8; i++) expect(since().filter((get) => get.key === keyOf(i))).toHaveLength(1)
  })

  it('concurrency 1: the next archive is asked for only once the current one is done', async () => {
    const mark = gets.length
    const run = stepper(items, { shardConcurrency: 1 })
    await run.next() // loose 'a'
    const count = fixtures[0]?.members.length as number
    for (let j = 0; j < count; j++) {
      const item = await run.next()
      expect(isMember(item) && item.entry.archive_key).toBe(keyOf(0))
      await outOf(item)
      expect(gets.slice(mark).map((get) => get.key)).toEqual([keyOf(0)])
    }
    await run.rest()
  })

  it('a shard read ahead whose next member does not fit lets go of its archive, and in its turn is read again from that member, pinned to its ETag', async () => {
    const mark = gets.length
    const run = stepper(items, { shardConcurrency: 4, maxBufferedBytes: 200 * KiB })
    const out: Out[] = [await outOf(await run.next())]
    const first = await run.next() // shard 0, held: shards 1-3 read ahead meanwhile
    // Shard 1's second member (1.5 MiB) cannot fit: its GET is closed, not held open while shard 0 is read.
    await until(() => gets.slice(mark).some((get) => get.key === keyOf(1) && get.done))
    out.push(await outOf(first))
    out.push(...(await run.rest()))
    expect(withoutBuffered(out)).toEqual(withoutBuffered(reference))
    const shard1 = gets.slice(mark).filter((get) => get.key === keyOf(1))
    expect(shard1).toHaveLength(2)
    expect(shard1[0]?.ifMatch).toBeUndefined()
    expect(shard1[1]?.ifMatch).toContain(fixtures[1]?.entry.meta?.etag as string)
  })

  it('a shard let go of and replaced before its turn: ShardReadError caused by ObjectChangedError, never members of two versions', async () => {
    const direct = { client: s3.client, bucket: s3.bucket }
    const key = s3.key('prefetch/replaced.tar')
    const write = async (fill: number) => {
      const writer = new ShardWriter(direct, key, { compression: null })
      for (let j = 0; j < 3; j++) await writer.add({ source: Buffer.alloc(150 * KiB, fill + j), member_path: `m${j}` })
      return writer.finish()
    }
    const v1 = await write(1)
    const run = stepper([fixtures[0]?.entry as ShardEntry, v1], { shardConcurrency: 2, maxBufferedBytes: 200 * KiB })
    const first = await run.next()
    // The replaced shard buffered its first member, then let go of its archive; replace it now.
    await until(() => gets.some((get) => get.key === key && get.done))
    await write(9)
    await outOf(first)
    const seen: Out[] = []
    const error = await (async () => {
      for (let next = await run.iterator.next(); !next.done; next = await run.iterator.next()) seen.push(await outOf(next.value))
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).cause).toBeInstanceOf(ObjectChangedError)
    expect((error as ShardReadError).archiveKey).toBe(key)
    // Of the replaced shard, only its first member (v1's, held in memory) came out.
    const fromReplaced = seen.filter((item) => 'entry' in item && item.entry.archive_key === key)
    expect(fromReplaced.map((item) => ('sha' in item ? item.sha : ''))).toEqual([sha(Buffer.alloc(150 * KiB, 1))])
  })

  it('a budget of 1 byte: later shards are opened and let go of; each is read in its turn, the output the same', async () => {
    const mark = gets.length
    const run = stepper(items, { shardConcurrency: 4, maxBufferedBytes: 1 })
    const out: Out[] = [await outOf(await run.next())]
    const first = await run.next()
    await vi.waitFor(
      () => {
        for (const i of [1, 2, 3]) expect(gets.slice(mark).some((get) => get.key === keyOf(i) && get.body !== undefined)).toBe(true)
      },
      { timeout: 20_000, interval: 5 },
    )
    out.push(await outOf(first))
    out.push(...(await run.rest()))
    expect(withoutBuffered(out)).toEqual(withoutBuffered(reference))
    for (const item of out) if ('entry' in item && (item.size as number) > 1) expect(item.buffered).toBe(false)
  })

  it('a long run of loose entries is not read ahead whole before the first item', async () => {
    let pulled = 0
    const shard = fixtures[1]?.entry as ShardEntry
    async function* input(): AsyncGenerator<ManifestEntry> {
      for (let i = 0; i < 50_000; i++) {
        pulled++
        yield { kind: 'file', key: `loose/${i}` }
      }
      pulled++
      yield shard
    }
    const iterator = expandShards(ctx, { bodies: true, shardConcurrency: 2 })(input())[Symbol.asyncIterator]()
    const first = await iterator.next()
    expect(first.value).toEqual({ kind: 'file', key: 'loose/0' })
    // A bounded look ahead (the stage keeps at most about a thousand items), not the 50,001 items of the input.
    expect(pulled).toBeLessThanOrEqual(2000)
    let count = 1
    let members = 0
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      count++
      if (isMember(next.value)) {
        members++
        await next.value.body.bytes()
      }
    }
    expect(count).toBe(50_000 + (fixtures[1]?.members.length as number))
    expect(members).toBe(fixtures[1]?.members.length)
  })
})

describe('a missing archive', () => {
  let broken: ManifestEntry[]
  let missingKey: string

  beforeAll(() => {
    missingKey = s3.key('prefetch/missing.tar')
    // Shard 3 of the list replaced by an archive that does not exist.
    broken = items.map((item) =>
      item.kind === 'shard' && item.archive_key === keyOf(3) ? { ...item, archive_key: missingKey, compression: null } : item,
    )
  })

  async function collectUntilError(input: ManifestEntry[], options: Omit<ExpandShardsOptions, 'bodies'>, onFirst?: () => Promise<void>) {
    const out: Out[] = []
    let failure: unknown
    try {
      for await (const item of expandShards(ctx, { bodies: true, ...options })(input)) {
        if (out.length === 1 && onFirst) await onFirst()
        out.push(await outOf(item))
      }
    } catch (error) {
      failure = error
    }
    return { out, failure }
  }

  it.each([
    { shardConcurrency: 4, maxBufferedBytes: undefined },
    { shardConcurrency: 4, maxBufferedBytes: 1 },
    { shardConcurrency: 8, maxBufferedBytes: undefined },
  ])(
    'fails with its typed error in its turn, after every member before it (concurrency $shardConcurrency, budget $maxBufferedBytes)',
    async (options) => {
      const expected = await collectUntilError(broken, { shardConcurrency: 1 })
      const mark = gets.length
      const { out, failure } = await collectUntilError(broken, options, async () => {
        // The missing archive was asked for ahead of its turn, and already failed.
        await vi.waitFor(() => expect(gets.slice(mark).some((get) => get.key === missingKey && get.done)).toBe(true), {
          timeout: 20_000,
          interval: 5,
        })
      })
      expect(gets.slice(mark).find((get) => get.key === missingKey)?.status).toBe(404)
      // Everything before it: loose 'a', shards 0-2, loose 'b', 'c'; nothing after it.
      const before = reference.slice(
        0,
        reference.findIndex((item) => 'entry' in item && item.entry.archive_key === keyOf(3)),
      )
      expect(withoutBuffered(expected.out)).toEqual(withoutBuffered(before))
      expect(withoutBuffered(out)).toEqual(withoutBuffered(before))
      expect(failure).toBeInstanceOf(ShardReadError)
      expect((failure as ShardReadError).archiveKey).toBe(missingKey)
      expect((failure as ShardReadError).cause).toBeInstanceOf(ObjectNotFoundError)
      expect(expected.failure).toBeInstanceOf(ShardReadError)
    },
  )
})

describe('breaking out early', () => {
  /** Runs `body` and returns the unhandled rejections seen meanwhile (and a few turns of the event loop after). */
  async function watchingRejections(body: () => Promise<void>): Promise<unknown[]> {
    const seen: unknown[] = []
    const listener = (reason: unknown) => seen.push(reason)
    process.on('unhandledRejection', listener)
    try {
      await body()
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('unhandledRejection', listener)
    }
    return seen
  }

  /** Resolves when every GET since `mark` is over; fails (rather than hang) if one never is. */
  async function allClosed(mark: number): Promise<void> {
    const running = gets.slice(mark)
    let guard: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(running.map((get) => get.closed)),
      new Promise((_, reject) => {
        guard = setTimeout(
          () => reject(new Error(`GETs still running: ${running.filter((get) => !get.done).map((get) => get.key)}`)),
          20_000,
        )
      }),
    ]).finally(() => clearTimeout(guard))
  }

  it.each([
    {
      name: 'at the first member of shard 0, budget 1 MiB (smaller than a member)',
      stopAt: 1,
      options: { shardConcurrency: 4, maxBufferedBytes: 1024 * KiB },
      input: () => items,
    },
    {
      name: 'at the first member of shard 0, budget 1 byte',
      stopAt: 1,
      options: { shardConcurrency: 4, maxBufferedBytes: 1 },
      input: () => items,
    },
    { name: 'in the middle of shard 2', stopAt: 12, options: { shardConcurrency: 4, maxBufferedBytes: 150 * KiB }, input: () => items },
    {
      name: 'with a missing archive read ahead and failed',
      stopAt: 2,
      options: { shardConcurrency: 8 },
      input: () =>
        items.map((item) =>
          item.kind === 'shard' && item.archive_key === keyOf(2) ? { ...item, archive_key: s3.key('prefetch/nope.tar') } : item,
        ),
    },
  ])('$name: every GET closed, no unhandled rejection', async ({ stopAt, options, input }) => {
    const mark = gets.length
    const rejections = await watchingRejections(async () => {
      let n = 0
      for await (const item of expandShards(ctx, { bodies: true, ...options })(input())) {
        // Read some, not all: the one we stop at stays unread.
        if (n < stopAt && isMember(item)) await item.body.bytes()
        if (++n > stopAt) break
      }
      // Once the loop is left, no GET is still streaming: each body was read to its end or destroyed.
      for (const get of gets.slice(mark)) {
        expect(get.body === undefined || get.body.destroyed || get.body.readableEnded, get.key).toBe(true)
      }
      await allClosed(mark)
    })
    expect(gets.slice(mark).length).toBeGreaterThan(1)
    expect(gets.slice(mark).every((get) => get.done)).toBe(true)
    expect(rejections).toEqual([])
  })
})

describe('bodies of the shard being consumed', () => {
  it('can be read lazily as a stream, or skipped: later members are unharmed, never wrong bytes', async () => {
    const out: { entry: FileEntry; body: EntryWithBody['body'] }[] = []
    let n = 0
    for await (const item of expandShards(ctx, { bodies: true, shardConcurrency: 4, maxBufferedBytes: 100 * KiB })(items)) {
      if (!isMember(item)) continue
      const spec = fixtures.flatMap((f) => f.members).find((s) => s.path === item.entry.member_path) as Spec
      if (n++ % 3 === 2) {
        // Skipped for now.
        out.push(item)
        continue
      }
      const chunks: Buffer[] = []
      for await (const chunk of item.body) chunks.push(Buffer.from(chunk))
      expect(Buffer.concat(chunks).equals(spec.data), spec.path).toBe(true)
    }
    expect(out.length).toBeGreaterThan(3)
    // A skipped body read afterwards is BodyConsumedError, whether it had been held in memory or not.
    for (const { entry, body } of out) {
      const error = await rejection(body.bytes())
      expect(error, entry.member_path).toBeInstanceOf(BodyConsumedError)
      expect(error).toMatchObject({ key: entry.key, reason: 'released' })
    }
  })
})
