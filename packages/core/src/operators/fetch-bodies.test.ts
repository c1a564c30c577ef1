import { setTimeout as sleep } from 'node:timers/promises'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { FileEntry, ManifestEntry } from '../format/entries.js'
import { BodyConsumedError, ObjectNotFoundError } from '../format/errors.js'
import type { EntryWithBody } from '../s3/body.js'
import { ObjectBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { expandShards } from './expand-shards.js'
import { fetchBodies } from './fetch-bodies.js'

const s3 = useTestS3()
const clients: S3Client[] = []

interface Tracked {
  ctx: S3Context
  counts: Record<string, number>
  /** Keys of the GetObject requests, in the order they were sent. */
  started: string[]
  /** Keys of the GetObject requests, in the order their responses came back. */
  finished: string[]
  /** Most GetObject requests in flight at once. */
  maxInFlight: () => number
}

/**
 * A fresh client whose GetObject requests are observed through SDK middleware; `hold(key)`
 * returns a promise the request for `key` waits for before it is sent; `onFinished` hears of
 * each answered request.
 */
function tracked(hold?: (key: string) => Promise<void> | undefined, onFinished?: (finished: string[]) => void): Tracked {
  const client = s3.s3.createClient()
  clients.push(client)
  const started: string[] = []
  const finished: string[] = []
  let inFlight = 0
  let max = 0
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetObjectCommand') return next(args)
      const key = (args.input as { Key: string }).Key
      await hold?.(key)
      started.push(key)
      inFlight++
      max = Math.max(max, inFlight)
      try {
        return await next(args)
      } finally {
        inFlight--
        finished.push(key)
        onFinished?.(finished)
      }
    },
    { step: 'initialize', name: 'test-track-gets' },
  )
  return { ctx: { client, bucket: s3.bucket }, counts: countRequests(client), started, finished, maxInFlight: () => max }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.destroy()
})

const N = 40
const looseKey = (i: number) => s3.key(`fb/loose-${String(i).padStart(3, '0')}.txt`)
const looseData = (i: number) => `object ${i} `.repeat(1 + (i % 7))
const loose = (i: number): FileEntry => ({ kind: 'file', key: looseKey(i) })

beforeAll(async () => {
  await Promise.all(
    Array.from({ length: N }, (_, i) => s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: looseKey(i), Body: looseData(i) }))),
  )
})

async function put(name: string, body: string | Uint8Array): Promise<string> {
  const key = s3.key(name)
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
  return key
}

/** Reads every body inside the loop; returns [entry key, text] pairs. */
async function readAll(items: AsyncIterable<EntryWithBody>): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const { entry, body } of items) out.push([entry.kind === 'shard' ? entry.archive_key : entry.key, await body.text()])
  return out
}

describe('fetchBodies', () => {
  it('yields every entry with its body, in input order', async () => {
    const { ctx } = tracked()
    const entries = Array.from({ length: N }, (_, i) => loose(i))
    expect(await readAll(fetchBodies(ctx, { concurrency: 8 })(entries))).toStrictEqual(entries.map((e, i) => [e.key, looseData(i)]))
  })

  it('keeps input order even when later objects come back first', async () => {
    // The first request waits until the three after it have been answered.
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const t = tracked(
      (key) => (key === looseKey(0) ? gate : undefined),
      (finished) => {
        if ([1, 2, 3].every((i) => finished.includes(looseKey(i)))) release()
      },
    )
    const entries = Array.from({ length: 8 }, (_, i) => loose(i))
    const out = await readAll(fetchBodies(t.ctx, { concurrency: 4 })(entries))
    expect(out).toStrictEqual(entries.map((e, i) => [e.key, looseData(i)]))
    // Later objects really did finish first.
    expect(t.finished.indexOf(looseKey(0))).toBeGreaterThanOrEqual(3)
  })

  it.each([1, 3, 16])('has at most %i requests in flight', async (concurrency) => {
    const t = tracked()
    const entries = Array.from({ length: N }, (_, i) => loose(i))
    expect(await readAll(fetchBodies(t.ctx, { concurrency })(entries))).toHaveLength(N)
    expect(t.maxInFlight()).toBeLessThanOrEqual(concurrency)
    if (concurrency > 1) expect(t.maxInFlight()).toBeGreaterThan(1)
    expect(t.counts.GetObjectCommand).toBe(N)
  })

  it('a missing object is ObjectNotFoundError with its key, in its turn', async () => {
    const { ctx } = tracked()
    const missing = s3.key('fb/missing.txt')
    const seen: string[] = []
    const error = await (async () => {
      for await (const { entry, body } of fetchBodies(ctx, { concurrency: 4 })([
        loose(0),
        loose(1),
        { kind: 'file', key: missing },
        loose(2),
      ])) {
        seen.push((entry as FileEntry).key)
        await body.bytes()
      }
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(missing)
    expect((error as Error).message).toContain(missing)
    expect(seen).toStrictEqual([looseKey(0), looseKey(1)])
  })

  it("onMissing: 'skip' skips missing objects", async () => {
    const { ctx } = tracked()
    const entries: FileEntry[] = [
      { kind: 'file', key: s3.key('fb/gone-0') },
      loose(0),
      { kind: 'file', key: s3.key('fb/gone-1') },
      loose(1),
    ]
    expect(await readAll(fetchBodies(ctx, { concurrency: 2, onMissing: 'skip' })(entries))).toStrictEqual([
      [looseKey(0), looseData(0)],
      [looseKey(1), looseData(1)],
    ])
  })

  it('items that already have a body pass through, and nothing after them is pulled until the consumer moves on', async () => {
    const { ctx } = tracked()
    const carried: EntryWithBody = {
      entry: { kind: 'file', key: 'in-memory' },
      body: ObjectBody.fromBytes({ key: 'in-memory' }, Buffer.from('mem')),
    }
    const pulled: string[] = []
    async function* input(): AsyncGenerator<ManifestEntry | EntryWithBody> {
      pulled.push('0')
      yield loose(0)
      pulled.push('carried')
      yield carried
      pulled.push('1')
      yield loose(1)
      pulled.push('2')
      yield loose(2)
    }
    const out: string[] = []
    for await (const item of fetchBodies(ctx, { concurrency: 8 })(input())) {
      if (item.entry.kind === 'file' && item.entry.key === 'in-memory') {
        expect(item).toBe(carried)
        expect(pulled).toStrictEqual(['0', 'carried'])
      }
      out.push(`${(item.entry as FileEntry).key}=${await item.body.text()}`)
    }
    expect(out).toStrictEqual([
      `${looseKey(0)}=${looseData(0)}`,
      'in-memory=mem',
      `${looseKey(1)}=${looseData(1)}`,
      `${looseKey(2)}=${looseData(2)}`,
    ])
    expect(pulled).toStrictEqual(['0', 'carried', '1', '2'])
  })

  it('composes with expandShards: shard members stream through, loose files are fetched, all in order', async () => {
    const members = [
      { name: 'm0.txt', data: 'member zero' },
      { name: 'm1.txt', data: 'member one'.repeat(500) },
      { name: 'm2.txt', data: 'member two' },
    ]
    const archiveKey = s3.key('fb/shard.tar.gz')
    await put(
      'fb/shard.tar.gz',
      await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members], { gzip: true }),
    )
    const { ctx } = tracked()
    const entries: ManifestEntry[] = [
      loose(0),
      { kind: 'shard', archive_key: archiveKey },
      loose(1),
      { kind: 'shard', archive_key: archiveKey },
      loose(2),
    ]
    const shardPart = members.map((m): [string, string] => [`${archiveKey}#${m.name}`, m.data])
    const want: [string, string][] = [
      [looseKey(0), looseData(0)],
      ...shardPart,
      [looseKey(1), looseData(1)],
      ...shardPart,
      [looseKey(2), looseData(2)],
    ]
    const items = fetchBodies(ctx, { concurrency: 4 })(expandShards(ctx, { bodies: true })(entries))
    expect(await readAll(items)).toStrictEqual(want)
  })

  it('breaking out of the loop early stops fetching', async () => {
    const t = tracked()
    const concurrency = 8
    let pulled = 0
    let inputClosed = false
    function* input(): Generator<FileEntry> {
      try {
        for (let i = 0; i < 1000; i++) {
          pulled++
          yield loose(i % N)
        }
      } finally {
        inputClosed = true
      }
    }
    let consumed = 0
    for await (const { body } of fetchBodies(t.ctx, { concurrency })(input())) {
      await body.bytes()
      if (++consumed === 3) break
    }
    expect(inputClosed).toBe(true)
    // Each request for the next item tops the requests in flight up to `concurrency` (and the
    // window holds at most 4 × concurrency): with 3 items taken, at most 3 × concurrency GETs,
    // far from the 1,000 entries.
    const bound = consumed * concurrency
    expect(pulled).toBeLessThanOrEqual(bound)
    const afterBreak = t.counts.GetObjectCommand ?? 0
    expect(afterBreak).toBeLessThanOrEqual(bound)
    // And nothing more is asked for once the loop is left.
    await sleep(50)
    expect(t.counts.GetObjectCommand ?? 0).toBe(afterBreak)
  })

  it('breaking out of the loop early cancels the requests fetched ahead', async () => {
    // Every GetObject but the first waits at a gate until the loop has been left.
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const outcomes: string[] = []
    let entered = 0
    let allSettled: () => void = () => {}
    const settled = new Promise<void>((resolve) => {
      allSettled = resolve
    })
    const client = s3.s3.createClient()
    clients.push(client)
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'GetObjectCommand') return next(args)
        if (entered++ > 0) await gate
        try {
          const result = await next(args)
          outcomes.push('ok')
          return result
        } catch (error) {
          outcomes.push((error as Error).name)
          throw error
        } finally {
          if (outcomes.length === entered) allSettled()
        }
      },
      { step: 'initialize', name: 'test-gate' },
    )
    const ctx: S3Context = { client, bucket: s3.bucket }
    for await (const { body } of fetchBodies(ctx, { concurrency: 4 })(Array.from({ length: 10 }, (_, i) => loose(i)))) {
      expect(await body.text()).toBe(looseData(0))
      break
    }
    // Four requests at first; when the first completes, a fifth may start to keep four in flight.
    expect([4, 5]).toContain(entered)
    release()
    await settled
    expect(outcomes).toStrictEqual(['ok', ...Array.from({ length: entered - 1 }, () => 'AbortError')])
  })

  it('fetches an archive member for a file entry with archive_key and member_path', async () => {
    const members = [
      { name: 'x/one.txt', data: 'one' },
      { name: 'x/two.txt', data: 'two two' },
    ]
    const archiveKey = s3.key('fb/members.tar')
    await put(
      'fb/members.tar',
      await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members]),
    )
    const { ctx } = tracked()
    const entries: FileEntry[] = [
      { kind: 'file', key: `${archiveKey}#x/two.txt`, archive_key: archiveKey, member_path: 'x/two.txt' },
      { kind: 'file', key: `${archiveKey}#x/one.txt` }, // a virtual key alone
    ]
    expect(await readAll(fetchBodies(ctx, { concurrency: 2 })(entries))).toStrictEqual([
      [`${archiveKey}#x/two.txt`, 'two two'],
      [`${archiveKey}#x/one.txt`, 'one'],
    ])
  })

  it('a member entry whose archive is missing is ObjectNotFoundError with the entry key', async () => {
    const { ctx } = tracked()
    const archiveKey = s3.key('fb/no-such-archive.tar')
    const key = `${archiveKey}#a.txt`
    const error = await readAll(fetchBodies(ctx)([{ kind: 'file', key, archive_key: archiveKey, member_path: 'a.txt' }])).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })

  it('a member missing from an existing archive is ObjectNotFoundError with the virtual key', async () => {
    const archiveKey = s3.key('fb/small.tar')
    await put('fb/small.tar', await buildTar([{ name: 'a.txt', data: 'a' }]))
    const { ctx } = tracked()
    const key = `${archiveKey}#nope.txt`
    const error = await readAll(fetchBodies(ctx)([{ kind: 'file', key, archive_key: archiveKey, member_path: 'nope.txt' }])).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })

  it("a key with '#' and no archive behind it is fetched as an ordinary key", async () => {
    const key = await put('fb/notes#1.txt', 'hash in the key')
    const { ctx } = tracked()
    expect(await readAll(fetchBodies(ctx)([{ kind: 'file', key }]))).toStrictEqual([[key, 'hash in the key']])
  })

  it("a missing key with '#' is ObjectNotFoundError with the whole key", async () => {
    const { ctx } = tracked()
    const key = s3.key('fb/absent#1.txt')
    const error = await readAll(fetchBodies(ctx)([{ kind: 'file', key }])).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })

  it("fetches a shard's archive and a ref's manifest", async () => {
    const archiveKey = await put('fb/raw.tar', 'pretend archive')
    const refKey = await put('fb/ref.jsonl', '{"kind":"file","key":"z"}\n')
    const { ctx } = tracked()
    expect(
      await readAll(
        fetchBodies(ctx)([
          { kind: 'shard', archive_key: archiveKey },
          { kind: 'manifest_ref', key: refKey },
        ]),
      ),
    ).toStrictEqual([
      [archiveKey, 'pretend archive'],
      [refKey, '{"kind":"file","key":"z"}\n'],
    ])
  })

  it('buffers small objects ahead within the byte budget, streams the others', async () => {
    const { ctx } = tracked()
    const buffered: boolean[] = []
    for await (const { body } of fetchBodies(ctx, { concurrency: 4 })([loose(0), loose(1)])) {
      buffered.push(body.buffered)
      await body.bytes()
    }
    expect(buffered).toStrictEqual([true, true])

    const streamed: boolean[] = []
    const texts: string[] = []
    for await (const { body } of fetchBodies(ctx, { concurrency: 4, maxBufferedBytes: 0 })([loose(3), loose(4), loose(5)])) {
      streamed.push(body.buffered)
      texts.push(await body.text())
    }
    expect(streamed).toStrictEqual([false, false, false])
    expect(texts).toStrictEqual([looseData(3), looseData(4), looseData(5)])
  })

  it('takes a plain array or an async iterable', async () => {
    const { ctx } = tracked()
    async function* input() {
      yield loose(5)
      yield loose(6)
    }
    expect(await readAll(fetchBodies(ctx)(input()))).toStrictEqual([
      [looseKey(5), looseData(5)],
      [looseKey(6), looseData(6)],
    ])
    expect(await readAll(fetchBodies(ctx)([]))).toStrictEqual([])
  })
})

describe('fetchBodies holds at most concurrency connections (issue 12, case 1)', () => {
  /**
   * A context whose GETs are counted, with the number of response bodies not yet closed (`open`)
   * and the most the stage held at once (`maxOpen`: requests in flight plus bodies neither
   * destroyed nor closed; a body the stage destroyed is let go, although its socket closes a little
   * later).
   */
  function watched(): { ctx: S3Context; gets: string[]; open: () => number; maxOpen: () => number } {
    const client = s3.s3.createClient()
    clients.push(client)
    const gets: string[] = []
    type Body = { closed?: boolean; destroyed?: boolean; once(event: string, listener: () => void): void }
    const bodies = new Set<Body>()
    let pending = 0
    let open = 0
    let max = 0
    const held = () => pending + [...bodies].filter((body) => !body.destroyed && !body.closed).length
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'GetObjectCommand') return next(args)
        gets.push((args.input as { Key: string }).Key)
        pending++
        open++
        max = Math.max(max, held())
        let result: Awaited<ReturnType<typeof next>>
        try {
          result = await next(args)
        } catch (error) {
          pending--
          open--
          throw error
        }
        pending--
        const body = (result.response as { body?: Body }).body
        if (!body || body.closed) open--
        else {
          bodies.add(body)
          body.once('close', () => {
            open--
            bodies.delete(body)
          })
        }
        max = Math.max(max, held())
        return result
      },
      { step: 'deserialize', name: 'test-open-bodies' },
    )
    return { ctx: { client, bucket: s3.bucket }, gets, open: () => open, maxOpen: () => max }
  }

  const big = (i: number) => s3.key(`fb/big-${i}.bin`)
  const bigData = Buffer.alloc(200 * 1024, 7)

  beforeAll(async () => {
    await Promise.all(Array.from({ length: 12 }, (_, i) => put(`fb/big-${i}.bin`, bigData)))
  })

  it.each([1, 3])(
    'objects larger than the budget, every body skipped: at most %i open at once, all closed at the end',
    async (concurrency) => {
      const w = watched()
      const skipped: EntryWithBody[] = []
      for await (const item of fetchBodies(w.ctx, { concurrency, maxBufferedBytes: 64 * 1024 })(
        Array.from({ length: 12 }, (_, i): FileEntry => ({ kind: 'file', key: big(i) })),
      )) {
        skipped.push(item)
      }
      expect(skipped).toHaveLength(12)
      expect(w.maxOpen()).toBeLessThanOrEqual(concurrency)
      // Closing is asynchronous (the socket's close event): poll, with no time limit of its own.
      while (w.open() > 0) await sleep(5)
      expect(w.open()).toBe(0)
      for (const { body } of skipped) expect(await body.bytes().catch((e: unknown) => e)).toBeInstanceOf(BodyConsumedError)
    },
  )

  it('read as streams one by one: at most concurrency open, every byte right', async () => {
    const w = watched()
    let count = 0
    for await (const { body } of fetchBodies(w.ctx, { concurrency: 2, maxBufferedBytes: 0 })(
      Array.from({ length: 12 }, (_, i): FileEntry => ({ kind: 'file', key: big(i) })),
    )) {
      let bytes = 0
      for await (const chunk of body) bytes += (chunk as Buffer).byteLength
      expect(bytes).toBe(bigData.byteLength)
      count++
    }
    expect(count).toBe(12)
    expect(w.maxOpen()).toBeLessThanOrEqual(2)
  })

  it('an entry whose size_bytes says it cannot fit is not fetched ahead: one GET each, in its turn', async () => {
    const w = watched()
    const entries = Array.from({ length: 6 }, (_, i): FileEntry => ({ kind: 'file', key: big(i), size_bytes: bigData.byteLength }))
    for await (const { body } of fetchBodies(w.ctx, { concurrency: 4, maxBufferedBytes: 64 * 1024 })(entries)) await body.bytes()
    expect(w.gets).toEqual(entries.map((entry) => entry.key))
  })

  it('small objects are still read ahead into memory, many at once', async () => {
    const w = watched()
    const buffered: boolean[] = []
    for await (const { body } of fetchBodies(w.ctx, { concurrency: 8 })(Array.from({ length: N }, (_, i) => loose(i)))) {
      buffered.push(body.buffered)
      await body.bytes()
    }
    expect(buffered.every(Boolean)).toBe(true)
    expect(w.maxOpen()).toBeGreaterThan(1)
    expect(w.maxOpen()).toBeLessThanOrEqual(8)
  })
})
