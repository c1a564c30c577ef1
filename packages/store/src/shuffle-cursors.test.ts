/**
 * Cursors under shuffle, through the store on a real S3 server: a shuffled, partitioned epoch
 * stopped at several points and resumed with the item's cursor gives the rest of the same order,
 * each object once with its bytes (also from inside a shard mixed whole, written by another tool);
 * a late resume reads no archive whose members were all handed over, none whole, and fetches no
 * body twice (the requests, as the loopback proxy records them); `iterManifestEntries` resumes too;
 * a cursor of another epoch, of an unshuffled read, or of a manifest appended to or rewritten since
 * is a `CursorMismatchError`.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { decodeCursor, type ShuffledCursorPosition } from '@s3exchange/core/internals'
import { foreignShardArchive } from '@s3exchange/testing'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { CursorMismatchError, type ManifestEntry, type ObjectWithCursor, type ShardEntry } from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
const via = useS3Proxy(s3)
let store: S3ExchangeStore
let root: string
let foreignShard: ShardEntry
let lateRoot: string
let lateShards: ShardEntry[]
const LATE_MEMBER_BYTES = 40_000

interface Got {
  key: string
  bytes: Buffer
  cursor: string
}

async function collect(items: AsyncIterable<ObjectWithCursor>): Promise<Got[]> {
  const out: Got[] = []
  for await (const { entry, body, cursor } of items) {
    out.push({ key: entry.kind === 'shard' ? entry.archive_key : entry.key, bytes: Buffer.from(await body.bytes()), cursor })
  }
  return out
}

const keysOf = (got: Got[]) => got.map((g) => g.key)
const path = (url: string) => decodeURIComponent(url.split('?')[0] as string)

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  // A plain tar shard without offsets (another tool's), loose objects, gzip shards this library writes (members located).
  root = s3.key('shuffle-cursors/manifest.jsonl')
  const foreign = await foreignShardArchive(s3.key('shuffle-cursors/foreign/shard.tar'), 5)
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: foreign.entry.archive_key, Body: foreign.archive }))
  foreignShard = foreign.entry
  const writer = store.openManifestWriter(root, { mode: 'overwrite', shardSize: { maxEntries: 5 }, shardCompression: 'gzip' })
  await writer.addEntry(foreignShard)
  for (let i = 0; i < 20; i++) {
    await writer.addToShard(`m/${i}.txt`, Buffer.from(`member ${i} `.repeat(10 + i)))
    if (i % 3 === 0) await writer.putObject(s3.key(`shuffle-cursors/loose/${i}.bin`), Buffer.alloc(40 + i, i))
  }
  await writer.close()

  // Plain tar shards larger than an archive's head read, for counting what a late resume reads.
  lateRoot = s3.key('shuffle-cursors/late/manifest.jsonl')
  const late = store.openManifestWriter(lateRoot, { mode: 'overwrite', shardSize: { maxEntries: 4 }, shardCompression: null })
  for (let i = 0; i < 48; i++) await late.addToShard(`p/${i}.bin`, Buffer.alloc(LATE_MEMBER_BYTES, i))
  await late.close()
  lateShards = (await Array.fromAsync(store.iterManifestEntries(lateRoot))) as ShardEntry[]
})

describe('iterObjects with shuffle and after', () => {
  it('partitioned, stopped at several points, resumed with the cursor: the rest of the same order, each object once, with its bytes', async () => {
    const shuffle = { seed: 'resume', epoch: 2, bufferSize: 6 }
    const all = new Set(keysOf(await collect(store.iterObjects(root))))
    const union: string[] = []
    let insideWhole = 0
    for (let index = 0; index < 2; index++) {
      const options = { shuffle, partition: { index, count: 2 } }
      const whole = await collect(store.iterObjects(root, options))
      union.push(...keysOf(whole))
      const n = whole.length
      const foreign = whole.flatMap((g, i) => (g.key.startsWith(`${foreignShard.archive_key}#`) ? [i] : []))
      const cuts = new Set([0, 1, Math.floor(n / 2), n - 2, n - 1, ...foreign].filter((k) => k >= 0 && k < n))
      for (const k of cuts) {
        const rest = await collect(store.iterObjects(root, { ...options, after: (whole[k] as Got).cursor }))
        expect(keysOf(rest), `worker ${index}, after item ${k}`).toStrictEqual(keysOf(whole.slice(k + 1)))
        rest.forEach((g, i) => {
          expect(g.bytes.equals((whole[k + 1 + i] as Got).bytes)).toBe(true)
        })
        if (foreign.includes(k) && k !== foreign.at(-1)) insideWhole++
      }
    }
    expect(union).toHaveLength(all.size)
    expect(new Set(union)).toStrictEqual(all)
    expect(insideWhole).toBeGreaterThan(0) // some resumes started inside the shard mixed whole
  })

  it('a late resume reads no archive whose members were all handed over, none whole, and no body twice', async () => {
    const shuffle = { seed: 11, epoch: 0, bufferSize: 3 }
    const whole = await collect(store.iterObjects(lateRoot, { shuffle }))
    expect(whole).toHaveLength(48)
    const k = 39
    const position = decodeCursor((whole[k] as Got).cursor) as ShuffledCursorPosition
    expect(position.low.unit).toBeGreaterThan(lateShards.length / 2)

    const counted = new S3ExchangeStore({ client: via.client, bucket: s3.bucket }) // its own index cache: nothing known yet
    const mark = via.proxy.requests.length
    const rest = await collect(counted.iterObjects(lateRoot, { shuffle, after: (whole[k] as Got).cursor }))
    expect(keysOf(rest)).toStrictEqual(keysOf(whole.slice(k + 1)))
    const gets = via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')
    const archives = gets.filter((r) => path(r.url).endsWith('.tar'))
    // Every archive request is ranged: none is read whole.
    expect(archives.every((r) => r.headers.range !== undefined)).toBe(true)
    // The units of the worker's order before `low` are not touched at all (not even their heads).
    const touched = new Set(archives.map((r) => path(r.url)))
    expect(touched.size).toBeLessThanOrEqual(lateShards.length - position.low.unit)
    // The manifest, one head per archive from `low` on, one ranged GET per item still to come.
    expect(gets).toHaveLength(1 + (lateShards.length - position.low.unit) + rest.length)
    // An uninterrupted run reads every archive's head, and every member.
    const mark2 = via.proxy.requests.length
    await collect(new S3ExchangeStore({ client: via.client, bucket: s3.bucket }).iterObjects(lateRoot, { shuffle }))
    const fresh = via.proxy.requests.slice(mark2).filter((r) => r.method === 'GET')
    expect(new Set(fresh.filter((r) => path(r.url).endsWith('.tar')).map((r) => path(r.url))).size).toBe(lateShards.length)
    expect(fresh).toHaveLength(1 + lateShards.length + 48)
  })

  it('resumed inside a shard mixed whole: its members after that one, the archive read once', async () => {
    const shuffle = { seed: 4, epoch: 1, bufferSize: 2 }
    const whole = await collect(
      store.iterObjects([foreignShard, { kind: 'file', key: s3.key('shuffle-cursors/loose/0.bin') }], { shuffle }),
    )
    const k = whole.findIndex((g) => g.key.endsWith('#f/1.txt'))
    const counted = new S3ExchangeStore({ client: via.client, bucket: s3.bucket })
    const mark = via.proxy.requests.length
    const rest = await collect(
      counted.iterObjects([foreignShard, { kind: 'file', key: s3.key('shuffle-cursors/loose/0.bin') }], {
        shuffle,
        after: (whole[k] as Got).cursor,
      }),
    )
    expect(keysOf(rest)).toStrictEqual(keysOf(whole.slice(k + 1)))
    expect(rest[0]?.key).toBe(`${foreignShard.archive_key}#f/2.txt`)
    const foreignGets = via.proxy.requests.slice(mark).filter((r) => r.method === 'GET' && path(r.url).endsWith('foreign/shard.tar'))
    expect(foreignGets.length).toBeLessThanOrEqual(2) // its head (the whole small archive), at most one pass more
  })

  it('cursors that do not fit: another epoch, no shuffle, a plain cursor with shuffle (at the call); appended or rewritten since (at the read)', async () => {
    const shuffle = { seed: 'fit', epoch: 0, bufferSize: 4 }
    const [first] = await collect(store.iterObjects(root, { shuffle, limit: 3 }))
    const cursor = (first as Got).cursor
    expect(() => store.iterObjects(root, { shuffle: { ...shuffle, epoch: 1 }, after: cursor })).toThrow(/\(shuffle differs\)/)
    expect(() => store.iterObjects(root, { shuffle: { ...shuffle, seed: 'other' }, after: cursor })).toThrow(CursorMismatchError)
    expect(() => store.iterObjects(root, { shuffle, partition: { index: 0, count: 2 }, after: cursor })).toThrow(/partition/)
    expect(() => store.iterObjects(root, { after: cursor })).toThrow(/made with shuffle=.*resumed with none/)
    expect(() => store.iterManifestEntries(root, { shuffle, after: cursor })).toThrow(/\(shuffle differs\)/) // members mixed, not entries
    const [plain] = await collect(store.iterObjects(root, { limit: 1 }))
    expect(() => store.iterObjects(root, { shuffle, after: (plain as Got).cursor })).toThrow(/made with no partition or shuffle/)
    // The same shuffle spelt otherwise fits.
    expect(() => store.iterObjects(root, { shuffle: { seed: 'fit', epoch: 0, bufferSize: 4 }, after: cursor })).not.toThrow()

    const copy = s3.key('shuffle-cursors/copy/manifest.jsonl')
    const entries = await Array.fromAsync(store.iterManifestEntries(root))
    await store.writeManifest(copy, entries)
    const [item] = await collect(store.iterObjects(copy, { shuffle, limit: 1 }))
    await store.writeManifest(copy, [{ kind: 'file', key: s3.key('shuffle-cursors/loose/0.bin') }], { mode: 'append_parts' })
    await expect(Array.fromAsync(store.iterObjects(copy, { shuffle, after: (item as Got).cursor }))).rejects.toMatchObject({
      name: 'CursorMismatchError',
      reason: 'appended',
      key: copy,
    })
    await store.writeManifest(copy, [...entries].reverse())
    await expect(Array.fromAsync(store.iterObjects(copy, { shuffle, after: (item as Got).cursor }))).rejects.toMatchObject({
      name: 'CursorMismatchError',
      reason: 'rewritten',
    })
  })
})

describe('a manifest backed by one shard, shuffled', () => {
  it('its members shared out and mixed, resumed after each: the rest of the same order', async () => {
    const manifest = Manifest.fromShard(store, lateShards[0] as ShardEntry)
    for (let index = 0; index < 2; index++) {
      const options = { shuffle: { seed: 'one', epoch: 0, bufferSize: 2 }, partition: { index, count: 2 } }
      const whole = await collect(manifest.iterObjects(options))
      expect(whole).toHaveLength(2)
      for (let k = 0; k < whole.length; k++) {
        const rest = await collect(manifest.iterObjects({ ...options, after: (whole[k] as Got).cursor }))
        expect(keysOf(rest)).toStrictEqual(keysOf(whole.slice(k + 1)))
      }
    }
  })
})

describe('iterManifestEntries with shuffle and cursors', () => {
  it('resumed after each entry: the rest of the same order', async () => {
    const shuffle = { seed: 'entries', epoch: 5, bufferSize: 3 }
    const keyOf = (entry: ManifestEntry) => (entry.kind === 'shard' ? entry.archive_key : entry.key)
    const whole = await Array.fromAsync(store.iterManifestEntries(root, { shuffle, cursors: true }))
    expect(whole.map((w) => keyOf(w.entry))).toStrictEqual((await Array.fromAsync(store.iterManifestEntries(root, { shuffle }))).map(keyOf))
    for (let k = 0; k < whole.length; k++) {
      const rest = await Array.fromAsync(store.iterManifestEntries(root, { shuffle, after: whole[k]?.cursor }))
      expect(rest.map(keyOf)).toStrictEqual(whole.slice(k + 1).map((w) => keyOf(w.entry)))
    }
  })
})
