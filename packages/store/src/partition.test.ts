/**
 * Worker partitions through the store, on a real S3 server: for 1 to 4 workers (and more workers
 * than entries), the shares of `iterObjects` are disjoint, together give exactly what the
 * unpartitioned iteration gives (keys and bytes), keep manifest order, and never split a shard;
 * `iterManifestEntries` shares out the same entries; `limit` counts within a share; bad options
 * are typed errors.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { ConfigurationError, type EntryWithBody, type FileEntry, type ManifestEntry, type ShardEntry } from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore
let root: string
const shards: ShardEntry[] = []

interface Got {
  key: string
  archive: string | undefined
  data: Buffer
}

async function objects(items: AsyncIterable<EntryWithBody>): Promise<Got[]> {
  const out: Got[] = []
  for await (const { entry, body } of items) {
    const key = entry.kind === 'shard' ? entry.archive_key : entry.key
    const archive = entry.kind === 'file' ? entry.archive_key : undefined
    out.push({ key, archive, data: Buffer.from(await body.bytes()) })
  }
  return out
}

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

const byKey = (a: Got, b: Got) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** Checks that the shares are disjoint, complete and ordered against `all`, and that no shard is split. */
function expectPartitionOf(all: Got[], shares: Got[][]): void {
  const keys = shares.flat().map((got) => got.key)
  expect(new Set(keys).size).toBe(keys.length) // disjoint
  expect(shares.flat().sort(byKey)).toStrictEqual([...all].sort(byKey)) // complete, same bytes
  const position = new Map(all.map((got, i) => [got.key, i]))
  for (const share of shares) {
    const positions = share.map((got) => position.get(got.key) as number)
    expect(positions).toStrictEqual([...positions].sort((a, b) => a - b)) // manifest order
  }
  const owner = new Map<string, number>()
  shares.forEach((share, index) => {
    for (const got of share) {
      if (got.archive === undefined) continue
      expect(owner.get(got.archive) ?? index).toBe(index) // a shard's members all go to one worker
      owner.set(got.archive, index)
    }
  })
}

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  // Loose files of different sizes; every other one says its size in the manifest.
  const loose: ManifestEntry[] = []
  for (let i = 0; i < 9; i++) {
    const key = s3.key(`ds/loose/${i}.bin`)
    const data = Buffer.alloc(100 + i * 300, i)
    await put(key, data)
    loose.push({ kind: 'file', key, id: String(i), ...(i % 2 === 0 ? { size_bytes: data.byteLength } : {}) })
  }
  // Four shards, gzip and plain, of 2 to 5 members; two say their archive size.
  for (let s = 0; s < 4; s++) {
    const gzip = s % 2 === 0
    const archiveKey = s3.key(`ds/shards/shard-${s}.tar${gzip ? '.gz' : ''}`)
    const members = Array.from({ length: 2 + s }, (_, m) => ({ name: `s${s}/m${m}.txt`, data: `shard ${s} member ${m} `.repeat(20 + m) }))
    const archive = await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members], { gzip })
    await put(archiveKey, archive)
    const shard: ShardEntry = {
      kind: 'shard',
      archive_key: archiveKey,
      format: 'tar',
      compression: gzip ? 'gzip' : null,
      count: members.length,
      ...(s < 2 ? { size_bytes: archive.byteLength } : {}),
    }
    shards.push(shard)
  }
  // A child manifest, reached through a ref, holds a shard and two files.
  const child = s3.key('ds/child.jsonl')
  const childEntries = [loose[7], shards[3], loose[8]] as ManifestEntry[]
  await put(child, childEntries.map((entry) => `${JSON.stringify(entry)}\n`).join(''))
  const ref: ManifestEntry = { kind: 'manifest_ref', key: child }
  const entries = [
    loose[0],
    loose[1],
    shards[0],
    loose[2],
    shards[1],
    loose[3],
    ref,
    loose[4],
    shards[2],
    loose[5],
    loose[6],
  ] as ManifestEntry[]
  root = s3.key('ds/manifest.jsonl')
  await put(root, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''))
})

describe('iterObjects with partition', () => {
  it('1 to 4 workers: disjoint shares whose union is the dataset, keys and bytes; shards never split', async () => {
    const all = await objects(store.iterObjects(root))
    expect(all).toHaveLength(9 + 2 + 3 + 4 + 5)
    for (let count = 1; count <= 4; count++) {
      const shares: Got[][] = []
      for (let index = 0; index < count; index++) shares.push(await objects(store.iterObjects(root, { partition: { index, count } })))
      expectPartitionOf(all, shares)
      if (count > 1) for (const share of shares) expect(share.length).toBeGreaterThan(0)
      // The same again: every worker computes the same shares.
      for (let index = 0; index < count; index++) {
        expect(
          (await objects(store.iterObjects(root, { partition: { index, count }, concurrency: 1 }))).map((got) => got.key),
        ).toStrictEqual(shares[index]?.map((got) => got.key))
      }
    }
  })

  it('more workers than entries: some get nothing, none gets anything twice', async () => {
    const all = await objects(store.iterObjects(root))
    const count = 20
    const shares: Got[][] = []
    for (let index = 0; index < count; index++) shares.push(await objects(store.iterObjects(root, { partition: { index, count } })))
    expectPartitionOf(all, shares)
    expect(shares.filter((share) => share.length === 0).length).toBeGreaterThan(0)
  })

  it('without shard expansion, whole archives are shared out', async () => {
    const all = await objects(store.iterObjects(root, { expandShards: false }))
    expect(all.filter((got) => shards.some((shard) => shard.archive_key === got.key))).toHaveLength(4)
    const shares: Got[][] = []
    for (let index = 0; index < 3; index++) {
      shares.push(await objects(store.iterObjects(root, { expandShards: false, partition: { index, count: 3 } })))
    }
    expectPartitionOf(all, shares)
  })

  it('limit counts within the share', async () => {
    const share = await objects(store.iterObjects(root, { partition: { index: 1, count: 2 } }))
    expect(share.length).toBeGreaterThan(3)
    const limited = await objects(store.iterObjects(root, { partition: { index: 1, count: 2 }, limit: 3 }))
    expect(limited).toStrictEqual(share.slice(0, 3))
  })

  it('a manifest backed by one shard shares out its members', async () => {
    const manifest = Manifest.fromShard(store, shards[3] as ShardEntry)
    const all = await objects(manifest.iterObjects())
    expect(all).toHaveLength(5)
    const shares: Got[][] = []
    for (let index = 0; index < 2; index++) shares.push(await objects(manifest.iterObjects({ partition: { index, count: 2 } })))
    const keys = shares.flat().map((got) => got.key)
    expect(new Set(keys).size).toBe(5)
    expect(shares.flat().sort(byKey)).toStrictEqual([...all].sort(byKey))
    expect(shares.map((share) => share.length)).toStrictEqual([3, 2])
  })

  it('a bad index or count is a ConfigurationError, thrown before anything is read', () => {
    expect(() => store.iterObjects(root, { partition: { index: 2, count: 2 } })).toThrow(ConfigurationError)
    expect(() => store.iterObjects(root, { partition: { index: 0, count: 0 } })).toThrow(ConfigurationError)
    expect(() => store.iterManifestEntries(root, { partition: { index: -1, count: 3 } })).toThrow(ConfigurationError)
  })
})

describe('iterManifestEntries with partition', () => {
  const keyOf = (entry: ManifestEntry) => (entry.kind === 'shard' ? entry.archive_key : entry.key)

  it('shares out the entries (refs resolved) that iterObjects fetches for the same worker', async () => {
    const entries = await Array.fromAsync(store.iterManifestEntries(root))
    expect(entries).toHaveLength(9 + 4)
    for (let count = 1; count <= 4; count++) {
      const union: string[] = []
      for (let index = 0; index < count; index++) {
        const share = await Array.fromAsync(store.iterManifestEntries(root, { partition: { index, count } }))
        union.push(...share.map(keyOf))
        // The worker's objects are exactly its loose files and its shards' members.
        const expected = share.map((entry) => (entry.kind === 'shard' ? entry.archive_key : entry.key))
        const got = (await objects(store.iterObjects(root, { partition: { index, count } }))).map((item) => item.archive ?? item.key)
        expect([...new Set(got)]).toStrictEqual(expected)
      }
      expect(union.sort()).toStrictEqual(entries.map(keyOf).sort())
      expect(new Set(union).size).toBe(union.length)
    }
  })

  it('with resolveRefs: false, a manifest_ref goes whole to one worker', async () => {
    const raw = await Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false }))
    const shares = await Promise.all(
      [0, 1, 2].map((index) => Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false, partition: { index, count: 3 } }))),
    )
    expect(shares.flat().map(keyOf).sort()).toStrictEqual(raw.map(keyOf).sort())
    expect(shares.flat().filter((entry) => entry.kind === 'manifest_ref')).toHaveLength(1)
  })

  it('a file entry keeps every field it was written with', async () => {
    const share = await Array.fromAsync(store.iterManifestEntries(root, { partition: { index: 0, count: 2 } }))
    const file = share.find((entry): entry is FileEntry => entry.kind === 'file' && entry.id === '0')
    expect(file).toStrictEqual({ kind: 'file', key: s3.key('ds/loose/0.bin'), id: '0', size_bytes: 100 })
  })
})
