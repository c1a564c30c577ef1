/**
 * The connection budget, end to end (issue 12, cases 1 to 3): the whole read path through a client
 * whose pool is small (`maxSockets: 8`, on the SDK's `NodeHttpHandler` with an agent of our own)
 * over deep refs (a chain of 64 `manifest_ref`s through manifests bigger than one chunk), wide
 * prefetch (`shardConcurrency: 64` over 55 shards listed in one part manifest) and skipped bodies
 * (`continue` past loose objects bigger than the prefetch budget, more of them than the pool has
 * sockets): each completes, and the sockets in use afterwards are back to what they were. With a
 * pool larger than the budget, the most sockets in use at once stays within `readConnections`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { type PooledClient, pooledClient, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  BodyConsumedError,
  type EntryWithBody,
  type FileEntry,
  readConnections,
  S3ExchangeStore,
  type ShardEntry,
  ShardWriter,
} from './index.js'

const s3 = useTestS3()
const KiB = 1024
const pools: PooledClient[] = []

afterEach(() => {
  for (const pool of pools.splice(0)) pool.destroy()
})

/** A store on a client of its own, whose pool has `maxSockets`. */
function storeOnPool(maxSockets: number): { store: S3ExchangeStore; pool: PooledClient } {
  const pool = pooledClient(s3.s3, { maxSockets })
  pools.push(pool)
  return { store: new S3ExchangeStore({ client: pool.client, bucket: s3.bucket }), pool }
}

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

const lines = (entries: object[]) => entries.map((entry) => `${JSON.stringify(entry)}\n`).join('')
const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** Checks that a finished call left no socket in use and no request waiting. */
async function expectAllReturned(pool: PooledClient, before: number): Promise<void> {
  await pool.settled()
  expect(pool.waiting()).toBe(0)
  expect(pool.inUse()).toBe(before)
}

// ------------------------------------------------------------------ fixtures

/** Deep refs: m0 → m1 → … → m64, each `[a_i (40 KiB of meta), ref m_{i+1}, b_i (40 KiB of meta)]`. */
const DEPTH = 64
const deepKey = (i: number) => s3.key(`deep/m${String(i).padStart(2, '0')}.jsonl`)
const deepObject = (name: string) => s3.key(`deep/objects/${name}.txt`)
const padding = 'p'.repeat(40 * KiB)

/** Wide prefetch: 55 shards of 6 members of 24 KiB, listed in one part manifest that the root refers to. */
const SHARDS = 55
const wideRoot = () => s3.key('wide/manifest.jsonl')
const widePart = () => s3.key('wide/manifests/part-1.jsonl')
const wideDigests = new Map<string, string>()
/** The members' virtual keys, in manifest order. */
const wideOrder: string[] = []

/** Skipped bodies: 24 loose objects of 256 KiB (and 4 small ones), in one manifest. */
const LOOSE = 24
const skipRoot = () => s3.key('skip/manifest.jsonl')
const skipData = new Map<string, Uint8Array>()

beforeAll(async () => {
  const puts: Promise<void>[] = []
  for (let i = 0; i <= DEPTH; i++) {
    const entries: object[] = [{ kind: 'file', key: deepObject(`a${i}`), id: `a${i}`, meta: { padding } }]
    if (i < DEPTH) entries.push({ kind: 'manifest_ref', key: deepKey(i + 1) })
    entries.push({ kind: 'file', key: deepObject(`b${i}`), id: `b${i}`, meta: { padding } })
    puts.push(put(deepKey(i), lines(entries)), put(deepObject(`a${i}`), `a${i}`), put(deepObject(`b${i}`), `b${i}`))
  }
  await Promise.all(puts)

  const ctx = { client: s3.client, bucket: s3.bucket }
  const shards: ShardEntry[] = await Promise.all(
    Array.from({ length: SHARDS }, async (_, i) => {
      const compression = i % 2 === 0 ? null : 'gzip'
      const writer = new ShardWriter(ctx, s3.key(`wide/shards/shard-${i}.tar${compression ? '.gz' : ''}`), { compression })
      for (let j = 0; j < 6; j++) {
        const data = randomBytes(24 * KiB)
        const entry = await writer.add({ source: data, member_path: `${i}/${j}.bin` })
        wideDigests.set(entry.key, sha(data))
      }
      return writer.finish()
    }),
  )
  for (const shard of shards)
    for (let j = 0; j < 6; j++) wideOrder.push(`${shard.archive_key}#${shard.archive_key.match(/shard-(\d+)/)?.[1]}/${j}.bin`)
  await put(widePart(), lines(shards))
  await put(wideRoot(), lines([{ kind: 'manifest_ref', key: widePart() }]))

  const entries: FileEntry[] = []
  puts.length = 0
  for (let i = 0; i < LOOSE + 4; i++) {
    const key = s3.key(`skip/objects/${i}.bin`)
    const data = randomBytes(i % 7 === 3 ? 100 : 256 * KiB)
    skipData.set(key, data)
    entries.push({ kind: 'file', key, size_bytes: data.byteLength })
    puts.push(put(key, data))
  }
  await Promise.all(puts)
  await put(skipRoot(), lines(entries))
})

/** A manifest of refs to the skipped objects, the wide part and the deep chain from `deepFrom`: every kind at once. */
async function mixedManifest(name: string, deepFrom: number): Promise<string> {
  const key = s3.key(`${name}/manifest.jsonl`)
  const refs = [skipRoot(), widePart(), deepKey(deepFrom)].map((ref) => ({ kind: 'manifest_ref', key: ref }))
  await put(key, lines(refs))
  return key
}

/** Objects in `mixedManifest(…, deepFrom)`. */
const mixedCount = (deepFrom: number) => LOOSE + 4 + SHARDS * 6 + (DEPTH + 1 - deepFrom) * 2

// ------------------------------------------------------------------ the three cases

describe('a pool of 8 sockets', () => {
  it('deep refs: a chain of 64 refs through manifests bigger than one chunk completes, in order, and gives every socket back', async () => {
    const { store, pool } = storeOnPool(8)
    const before = pool.inUse()
    const ids: string[] = []
    for await (const { entry, body } of store.iterObjects(deepKey(0))) {
      ids.push(entry.id as string)
      expect(await body.text()).toBe(entry.id)
    }
    const expected = [
      ...Array.from({ length: DEPTH + 1 }, (_, i) => `a${i}`),
      ...Array.from({ length: DEPTH + 1 }, (_, i) => `b${DEPTH - i}`),
    ]
    expect(ids).toEqual(expected)
    await expectAllReturned(pool, before)

    // Entries only, the same walk.
    const keys: string[] = []
    for await (const entry of store.iterManifestEntries(deepKey(0))) keys.push((entry as FileEntry).id as string)
    expect(keys).toEqual(expected)
    await expectAllReturned(pool, before)
  })

  it('wide prefetch: shardConcurrency 64 over 55 shards of one part manifest completes, every member intact, every socket given back', async () => {
    const { store, pool } = storeOnPool(8)
    const before = pool.inUse()
    const seen: string[] = []
    for await (const { entry, body } of store.iterObjects(wideRoot(), { shardConcurrency: 64, maxBufferedBytes: 256 * KiB })) {
      const key = (entry as FileEntry).key
      expect(sha(await body.bytes()), key).toBe(wideDigests.get(key))
      seen.push(key)
    }
    expect(seen).toEqual(wideOrder)
    await expectAllReturned(pool, before)
  })

  it('skipped bodies: continuing past loose objects bigger than the prefetch budget, more than the pool has, completes and gives every socket back', async () => {
    const { store, pool } = storeOnPool(8)
    const before = pool.inUse()
    const skipped: EntryWithBody[] = []
    let read = 0
    let i = 0
    for await (const item of store.iterObjects(skipRoot(), { maxBufferedBytes: 64 * KiB })) {
      if (i++ % 5 !== 4) {
        skipped.push(item)
        continue
      }
      expect(Buffer.from(await item.body.bytes()).equals(skipData.get((item.entry as FileEntry).key) as Uint8Array)).toBe(true)
      read++
    }
    expect(i).toBe(LOOSE + 4)
    expect(read).toBe(5)
    await expectAllReturned(pool, before)
    // A skipped body, of any size, read late: the same typed error.
    for (const { entry, body } of skipped) {
      const error = await rejection(body.bytes())
      expect(error).toBeInstanceOf(BodyConsumedError)
      expect(error).toMatchObject({ key: (entry as FileEntry).key, reason: 'released' })
    }
  })

  it('skipped bodies with the default budget and concurrency: nothing read at all, every socket given back', async () => {
    const { store, pool } = storeOnPool(8)
    const before = pool.inUse()
    let count = 0
    for await (const _ of store.iterObjects(skipRoot(), { maxBufferedBytes: 1 * KiB })) count++
    expect(count).toBe(LOOSE + 4)
    await expectAllReturned(pool, before)
  })

  it('skipped shard members and loose objects mixed, over refs: completes and gives every socket back', async () => {
    const { store, pool } = storeOnPool(8)
    const mixed = await mixedManifest('mixed', 60)
    const before = pool.inUse()
    let count = 0
    for await (const { body } of store.iterObjects(mixed, { shardConcurrency: 8, maxBufferedBytes: 32 * KiB })) {
      if (count++ % 3 === 0) await body.bytes()
    }
    expect(count).toBe(mixedCount(60))
    await expectAllReturned(pool, before)
  })
})

describe('a pool of 2 sockets: the least a read needs (the manifest and one body)', () => {
  it('refs, wide prefetch, loose objects and skipped bodies still complete', async () => {
    const { store, pool } = storeOnPool(2)
    const mixed = await mixedManifest('mixed-2', 60)
    const before = pool.inUse()
    let count = 0
    for await (const { body } of store.iterObjects(mixed, { shardConcurrency: 16, maxBufferedBytes: 64 * KiB })) {
      if (count++ % 2 === 0) await body.bytes()
    }
    expect(count).toBe(mixedCount(60))
    await expectAllReturned(pool, before)
  })
})

// ------------------------------------------------------------------ the budget

describe('the budget: with a pool larger than it, the sockets in use never exceed it', () => {
  it.each([
    { concurrency: 4, shardConcurrency: 3 },
    { concurrency: 1, shardConcurrency: 1 },
    { concurrency: 6, shardConcurrency: 12 },
  ])('iterObjects %o: at most 1 + concurrency + shardConcurrency', async (options) => {
    const { store, pool } = storeOnPool(200)
    const mixed = await mixedManifest(`budget-${options.concurrency}-${options.shardConcurrency}`, 56)
    let count = 0
    for await (const { body } of store.iterObjects(mixed, { ...options, maxBufferedBytes: 128 * KiB })) {
      // Some bodies read as streams, some whole, some skipped.
      if (count % 3 === 0) for await (const _ of body);
      else if (count % 3 === 1) await body.bytes()
      count++
    }
    expect(count).toBe(mixedCount(56))
    expect(pool.maxInUse()).toBeGreaterThan(1)
    expect(pool.maxInUse()).toBeLessThanOrEqual(readConnections(options).total)
    await expectAllReturned(pool, 0)
  })

  it('iterObjectsFromKeys and downloadObjects: at most concurrency', async () => {
    const { store, pool } = storeOnPool(200)
    const keys = [...skipData.keys(), ...wideOrder.slice(0, 40)]
    let count = 0
    for await (const { body } of store.iterObjectsFromKeys(keys, { concurrency: 3 })) if (count++ % 2 === 0) await body.bytes()
    expect(count).toBe(keys.length)
    expect(pool.maxInUse()).toBeLessThanOrEqual(readConnections({ concurrency: 3, manifest: false, expandShards: false }).total)
    await expectAllReturned(pool, 0)

    // Downloading the same keys: written, within the same budget.
    pool.resetMax()
    const dir = await mkdtemp(join(tmpdir(), 's3x-connections-'))
    try {
      const written = await store.downloadObjects(keys, dir, { concurrency: 3 })
      expect(written.size).toBe(keys.length)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    expect(pool.maxInUse()).toBeLessThanOrEqual(3)
    await expectAllReturned(pool, 0)
  })

  it('readConnections adds the terms of the options', () => {
    expect(readConnections()).toEqual({ manifests: 1, objects: 32, archives: 2, ranges: 4, total: 39 })
    expect(readConnections({ concurrency: 32, shardConcurrency: 4 }).total).toBe(41)
    expect(readConnections({ concurrency: 32, shardConcurrency: 4, rangeConcurrency: 0 }).total).toBe(37)
    expect(readConnections({ concurrency: 8, expandShards: false, rangeConcurrency: 2 }).total).toBe(11)
    expect(readConnections({ concurrency: 8, manifest: false, expandShards: false, rangeConcurrency: 0 }).total).toBe(8)
  })
})
