/**
 * Shuffled epochs through the store, on a real S3 server, over loose objects, shards this library
 * wrote (gzip and plain, members located by offsets) and a shard written by another tool (no
 * offsets): for 1 to 3 workers, every object exactly once per epoch with its own bytes; the same
 * (seed, epoch) gives the same order on every run, another epoch another one; a shard's members
 * go to one worker; bodies are fetched after the mix, each member by itself (the count of GETs);
 * `limit` cuts the mixed order; `iterManifestEntries` and a manifest backed by one shard shuffle
 * too; bad options are ConfigurationErrors naming the field, thrown at the call.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { countRequests, foreignShardArchive } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { ConfigurationError, type EntryWithBody, type ManifestEntry, type ShardEntry, type ShuffleOptions } from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore
let root: string
let locatedRoot: string
let locatedShards: ShardEntry[]
let foreignShard: ShardEntry
const LOOSE = 10
const MEMBERS_PER_SHARD = 6

/** Objects as `key → bytes`, in the order yielded. */
async function objects(items: AsyncIterable<EntryWithBody>): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = []
  for await (const { entry, body } of items) {
    const key = entry.kind === 'shard' ? entry.archive_key : entry.key
    out.push([key, Buffer.from(await body.bytes())])
  }
  return out
}

const keysOf = (got: [string, Buffer][]) => got.map(([key]) => key)
const archiveOf = (key: string) => (key.includes('#') ? key.slice(0, key.indexOf('#')) : undefined)

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  // Shards this library writes (gzip, members located by gz_offset), loose objects between them.
  root = s3.key('shuffle/manifest.jsonl')
  const writer = store.openManifestWriter(root, {
    mode: 'overwrite',
    shardSize: { maxEntries: MEMBERS_PER_SHARD },
    shardCompression: 'gzip',
  })
  for (let i = 0; i < 4 * MEMBERS_PER_SHARD; i++) {
    await writer.addToShard(`m/${i}.txt`, Buffer.from(`member ${i} `.repeat(10 + i)))
    if (i % 3 === 0 && i / 3 < LOOSE) await writer.putObject(s3.key(`shuffle/loose/${i / 3}.bin`), Buffer.alloc(50 + i, i))
  }
  for (let i = 8; i < LOOSE; i++) await writer.putObject(s3.key(`shuffle/loose/${i}.bin`), Buffer.alloc(50 + i, i))
  // A shard written by another tool: an internal manifest without offsets.
  const foreign = await foreignShardArchive(s3.key('shuffle/foreign/shard.tar.gz'), 5, { gzip: true })
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: foreign.entry.archive_key, Body: foreign.archive }))
  foreignShard = foreign.entry
  await writer.addEntry(foreignShard)
  await writer.close()

  // Plain tar shards only, for counting requests.
  locatedRoot = s3.key('shuffle/located/manifest.jsonl')
  const plain = store.openManifestWriter(locatedRoot, { mode: 'overwrite', shardSize: { maxEntries: MEMBERS_PER_SHARD } })
  for (let i = 0; i < 3 * MEMBERS_PER_SHARD; i++) await plain.addToShard(`p/${i}.txt`, Buffer.from(`plain ${i} `.repeat(5 + i)))
  await plain.close()
  locatedShards = (await Array.fromAsync(store.iterManifestEntries(locatedRoot))) as ShardEntry[]
})

describe('iterObjects with shuffle', () => {
  it('1 to 3 workers: every object exactly once per epoch, with its bytes; shards whole per worker', async () => {
    const all = await objects(store.iterObjects(root))
    expect(all).toHaveLength(LOOSE + 4 * MEMBERS_PER_SHARD + 5)
    const expected = new Map(all)
    for (let count = 1; count <= 3; count++) {
      const shuffle = { seed: 'e2e', epoch: count, bufferSize: 8 }
      const union: [string, Buffer][] = []
      const owner = new Map<string, number>()
      for (let index = 0; index < count; index++) {
        const share = await objects(store.iterObjects(root, { shuffle, partition: { index, count } }))
        for (const [key] of share) {
          const archive = archiveOf(key)
          if (archive === undefined) continue
          expect(owner.get(archive) ?? index).toBe(index)
          owner.set(archive, index)
        }
        union.push(...share)
      }
      expect(new Set(keysOf(union)).size).toBe(union.length)
      expect(union.length).toBe(all.length)
      for (const [key, bytes] of union) expect(bytes.equals(expected.get(key) as Buffer)).toBe(true)
    }
  })

  it('the same (seed, epoch): the same order, run after run; another epoch or seed: another order', async () => {
    const shuffle = { seed: 7, epoch: 0, bufferSize: 10 }
    const first = keysOf(await objects(store.iterObjects(root, { shuffle })))
    expect(keysOf(await objects(store.iterObjects(root, { shuffle: { ...shuffle, seed: '7' }, concurrency: 1 })))).toStrictEqual(first)
    expect(first).not.toStrictEqual(keysOf(await objects(store.iterObjects(root))))
    const next = keysOf(await objects(store.iterObjects(root, { shuffle: { ...shuffle, epoch: 1 } })))
    expect([...next].sort()).toStrictEqual([...first].sort())
    expect(next).not.toStrictEqual(first)
    expect(keysOf(await objects(store.iterObjects(root, { shuffle: { ...shuffle, seed: 8 } })))).not.toStrictEqual(first)
  })

  it('members of different shards are mixed: the buffer holds entries, bodies are fetched after', async () => {
    const got = keysOf(await objects(store.iterObjects(root, { shuffle: { seed: 1, epoch: 0, bufferSize: 20 } })))
    // Runs of members of the same archive: without mixing there would be one per shard.
    let runs = 0
    for (let i = 0; i < got.length; i++) {
      const archive = archiveOf(got[i] as string)
      if (archive !== undefined && archive !== archiveOf(got[i - 1] ?? '')) runs++
    }
    expect(runs).toBeGreaterThan(5)
  })

  it('each member is read by itself, one ranged GET, after the index of its archive (one head read per archive)', async () => {
    const client = s3.s3.createClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const got = await objects(counted.iterObjects(locatedRoot, { shuffle: { seed: 3, epoch: 2, bufferSize: 7 } }))
    expect(got).toHaveLength(3 * MEMBERS_PER_SHARD)
    // The manifest, each archive's head (its index, kept in the store's cache), then one ranged GET per member.
    expect(counts.GetObjectCommand).toBe(1 + locatedShards.length + got.length)
    for (const [key, bytes] of got) {
      const i = Number(key.slice(key.lastIndexOf('/') + 1, -'.txt'.length))
      expect(bytes.toString()).toBe(`plain ${i} `.repeat(5 + i))
    }
    client.destroy()
  })

  it('a shard without offsets is mixed whole and streamed once: its members together, in archive order', async () => {
    const got = keysOf(await objects(store.iterObjects(root, { shuffle: { seed: 9, epoch: 1, bufferSize: 4 } })))
    const foreign = got.flatMap((key, i) => (archiveOf(key) === foreignShard.archive_key ? [i] : []))
    expect(foreign).toHaveLength(5)
    expect(foreign.at(-1) as number).toBe((foreign[0] as number) + 4) // contiguous
    expect(foreign.map((i) => got[i])).toStrictEqual([0, 1, 2, 3, 4].map((m) => `${foreignShard.archive_key}#f/${m}.txt`))
    const client = s3.s3.createClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    expect(await objects(counted.iterObjects([foreignShard], { shuffle: { seed: 9, epoch: 1 } }))).toHaveLength(5)
    expect(counts.GetObjectCommand).toBe(2) // its head (no index there), then one pass over the archive
    client.destroy()
  })

  it('limit: the first items of the mixed order', async () => {
    const shuffle = { seed: 'limit', epoch: 4, bufferSize: 5 }
    const whole = keysOf(await objects(store.iterObjects(root, { shuffle })))
    expect(keysOf(await objects(store.iterObjects(root, { shuffle, limit: 6 })))).toStrictEqual(whole.slice(0, 6))
  })

  it('without shard expansion, whole archives are shuffled among the loose objects', async () => {
    const got = keysOf(await objects(store.iterObjects(root, { shuffle: { seed: 2, epoch: 0 }, expandShards: false })))
    const plain = keysOf(await objects(store.iterObjects(root, { expandShards: false })))
    expect([...got].sort()).toStrictEqual([...plain].sort())
    expect(got).not.toStrictEqual(plain)
  })

  it('a manifest backed by one shard shuffles its members', async () => {
    const manifest = Manifest.fromShard(store, foreignShard)
    const plain = await objects(manifest.iterObjects())
    const shuffled = await objects(manifest.iterObjects({ shuffle: { seed: 5, epoch: 0 } }))
    expect([...shuffled].sort()).toStrictEqual([...plain].sort())
    const shares = await Promise.all(
      [0, 1].map((index) => objects(manifest.iterObjects({ shuffle: { seed: 5, epoch: 0 }, partition: { index, count: 2 } }))),
    )
    expect(keysOf(shares.flat()).sort()).toStrictEqual(keysOf(plain).sort())
  })

  it.each<[string, unknown, RegExp]>([
    ['a fractional epoch', { seed: 1, epoch: 1.5 }, /shuffle\.epoch must be an integer ≥ 0, got 1\.5/],
    ['no seed', { epoch: 0 }, /shuffle\.seed/],
    ['bufferSize 0', { seed: 1, epoch: 0, bufferSize: 0 }, /shuffle\.bufferSize must be an integer ≥ 1/],
    ['an unknown field', { seed: 1, epoch: 0, buffer: 10 }, /shuffle\.buffer is not an option/],
  ])('%s is a ConfigurationError naming the field, thrown at the call', (_, shuffle, message) => {
    expect(() => store.iterObjects(root, { shuffle: shuffle as ShuffleOptions })).toThrow(ConfigurationError)
    expect(() => store.iterObjects(root, { shuffle: shuffle as ShuffleOptions })).toThrow(message)
    expect(() => store.iterManifestEntries(root, { shuffle: shuffle as ShuffleOptions })).toThrow(message)
  })
})

describe('iterManifestEntries with shuffle', () => {
  const keyOf = (entry: ManifestEntry) => (entry.kind === 'shard' ? entry.archive_key : entry.key)

  it('the entries (shards whole), each once, shared out identically to iterObjects', async () => {
    const entries = (await Array.fromAsync(store.iterManifestEntries(root))).map(keyOf)
    const shuffle = { seed: 'entries', epoch: 1, bufferSize: 3 }
    const shuffled = (await Array.fromAsync(store.iterManifestEntries(root, { shuffle }))).map(keyOf)
    expect([...shuffled].sort()).toStrictEqual([...entries].sort())
    expect(shuffled).not.toStrictEqual(entries)
    const union: string[] = []
    for (let index = 0; index < 3; index++) {
      const share = (await Array.fromAsync(store.iterManifestEntries(root, { shuffle, partition: { index, count: 3 } }))).map(keyOf)
      union.push(...share)
      // iterObjects gives the same worker the same loose objects and shards.
      const objectsOfShare = keysOf(await objects(store.iterObjects(root, { shuffle, partition: { index, count: 3 } })))
      expect(new Set(objectsOfShare.map((key) => archiveOf(key) ?? key))).toStrictEqual(new Set(share))
    }
    expect(union.sort()).toStrictEqual([...entries].sort())
  })
})
