/**
 * Shard: format inference, the internal manifest, members with their entries and bytes, one
 * member by path, and archives written by others (unlisted members, links, directories).
 */
import { zstdCompressSync } from 'node:zlib'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { type FileEntry, ObjectNotFoundError, ShardReadError } from './index.js'
import { Manifest } from './manifest.js'
import { Shard } from './shard.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

const members = [
  { name: '0001.wav', data: 'first member', id: 'a' },
  { name: 'deep/0002.wav', data: new Uint8Array([9, 8, 7, 6, 5]), id: 'b' },
  { name: '0003.txt', data: '', id: 'c' },
]
const manifestLines = (archiveKey: string) =>
  internalManifestFor(archiveKey, members)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as FileEntry)

let tarKey: string
let tgzKey: string
let zstKey: string

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  tarKey = s3.key('shards/shard-00000.tar')
  tgzKey = s3.key('shards/shard-00001.tar.gz')
  zstKey = s3.key('shards/shard-00002.tar.zst')
  for (const [key, gzip] of [
    [tarKey, false],
    [tgzKey, true],
  ] as const) {
    await put(key, await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(key, members) }, ...members], { gzip }))
  }
  // A .tar.zst as the zstd tool writes one: a single frame, no zst_offset.
  await put(
    zstKey,
    zstdCompressSync(await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(zstKey, members) }, ...members])),
  )
})

describe('format inference', () => {
  it('Shard.inferArchiveFormat reads the extension as Python does, and .tar.zst', () => {
    expect(Shard.inferArchiveFormat('a/b.tar.gz')).toEqual({ format: 'tar', compression: 'gzip' })
    expect(Shard.inferArchiveFormat('a/b.tar.zst')).toEqual({ format: 'tar', compression: 'zstd' })
    expect(Shard.inferArchiveFormat('a/b.tzst')).toEqual({ format: 'tar', compression: 'zstd' })
    expect(Shard.inferArchiveFormat('a/b.tgz')).toEqual({ format: 'tar', compression: 'gzip' })
    expect(Shard.inferArchiveFormat('a/b.tar')).toEqual({ format: 'tar', compression: null })
    expect(Shard.inferArchiveFormat('a/b.tar.bz2')).toEqual({ format: 'tar', compression: 'bzip2' })
    expect(Shard.inferArchiveFormat('a/b.tar.xz')).toEqual({ format: 'tar', compression: 'xz' })
    expect(Shard.inferArchiveFormat('a/b.zip')).toEqual({ format: 'tar', compression: null })
  })

  it('getShard infers format and compression from the key', () => {
    const tgz = store.getShard(tgzKey)
    expect(tgz).toBeInstanceOf(Shard)
    expect(tgz.archiveKey).toBe(tgzKey)
    expect(tgz.format).toBe('tar')
    expect(tgz.compression).toBe('gzip')
    expect(tgz.internalManifestPath).toBe('__manifest__.jsonl')
    expect(tgz.entry).toEqual({ kind: 'shard', archive_key: tgzKey, format: 'tar', compression: 'gzip' })
    expect(tgz.store).toBe(store)
    expect(String(tgz)).toBe(`Shard(archive_key=${tgzKey})`)

    const tar = store.getShard(tarKey)
    expect(tar.compression).toBeNull()
    expect(tar.entry.compression).toBeNull()
    expect(store.getShard(zstKey).compression).toBe('zstd')
    expect(store.isShard(zstKey)).toBe(true)
  })

  it('fromEntry keeps the entry; an entry without compression reads as gzip, as in Python', () => {
    const shard = Shard.fromEntry(store, { kind: 'shard', archive_key: 'x.tar', internal_manifest_path: 'meta/index.jsonl' })
    expect(shard.compression).toBe('gzip')
    expect(shard.format).toBe('tar')
    expect(shard.internalManifestPath).toBe('meta/index.jsonl')
  })
})

describe.each([
  ['plain tar', () => tarKey],
  ['tar.gz', () => tgzKey],
  ['tar.zst', () => zstKey],
])('a %s shard', (_, archiveKey) => {
  it('getManifest() gives the internal manifest entries, as written', async () => {
    const key = archiveKey()
    const manifest = store.getShard(key).getManifest()
    expect(manifest).toBeInstanceOf(Manifest)
    expect(String(manifest)).toBe(`Manifest(shard=${key})`)
    expect(await Array.fromAsync(manifest)).toStrictEqual(manifestLines(key))
  })

  it('iterEntries() yields what Manifest.iterEntries yields: the entries, read from the head of the archive', async () => {
    const key = archiveKey()
    const shard = store.getShard(key)
    expect(await Array.fromAsync(shard.iterEntries())).toStrictEqual(await Array.fromAsync(shard.getManifest().iterEntries()))
    expect(await Array.fromAsync(shard.iterEntries())).toStrictEqual(manifestLines(key))
    expect(await Array.fromAsync(shard.iterEntries({ limit: 1 }))).toStrictEqual(manifestLines(key).slice(0, 1))
  })

  it("iterObjects() gives the data members, in archive order, entries enriched, with their bytes, in one GET (the store's iterObjects)", async () => {
    const key = archiveKey()
    const client = s3.s3.createClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const got = []
    for await (const { entry, body } of counted.getShard(key).iterObjects()) got.push([entry, [...(await body.bytes())]])
    client.destroy()
    expect(got).toStrictEqual(
      manifestLines(key).map((line, i) => [
        { ...line, archive_key: key },
        [...Buffer.from((members[i] as { data: string | Uint8Array }).data)],
      ]),
    )
    expect(counts.GetObjectCommand).toBe(1)
    const viaStore = []
    for await (const { entry, body } of store.iterObjects(Manifest.fromShard(store, store.getShard(key).entry))) {
      viaStore.push([entry, [...(await body.bytes())]])
    }
    expect(viaStore).toStrictEqual(got)
  })

  it('iterObjects({ limit }) stops early', async () => {
    const got = await Array.fromAsync(store.getShard(archiveKey()).iterObjects({ limit: 2 }))
    expect(got.map(({ entry }) => entry.member_path)).toEqual(['0001.wav', 'deep/0002.wav'])
  })

  it('iterArchiveMembers() gives every regular member, the internal manifest included, with minimal entries', async () => {
    const key = archiveKey()
    const got = []
    for await (const { entry, body } of store.getShard(key).iterArchiveMembers()) got.push([entry, await body.text()])
    const manifestText = internalManifestFor(key, members)
    expect(got).toStrictEqual([
      [
        { kind: 'file', key: `${key}#__manifest__.jsonl`, member_path: '__manifest__.jsonl', size_bytes: Buffer.byteLength(manifestText) },
        manifestText,
      ],
      [{ kind: 'file', key: `${key}#0001.wav`, member_path: '0001.wav', size_bytes: 12 }, 'first member'],
      [{ kind: 'file', key: `${key}#deep/0002.wav`, member_path: 'deep/0002.wav', size_bytes: 5 }, '\t\b\u0007\u0006\u0005'],
      [{ kind: 'file', key: `${key}#0003.txt`, member_path: '0003.txt', size_bytes: 0 }, ''],
    ])
    expect(await Array.fromAsync(store.getShard(key).iterArchiveMembers({ limit: 1 }))).toHaveLength(1)
  })

  it('getMember() reads one member', async () => {
    const key = archiveKey()
    const body = await store.getShard(key).getMember('deep/0002.wav')
    expect(body.key).toBe(`${key}#deep/0002.wav`)
    expect(body.archiveKey).toBe(key)
    expect(body.memberPath).toBe('deep/0002.wav')
    expect(body.size).toBe(5)
    expect([...(await body.bytes())]).toEqual([9, 8, 7, 6, 5])
    expect(await (await store.getShard(key).getMember('0003.txt')).text()).toBe('')
  })

  it('getMember() of a missing member is ObjectNotFoundError naming the virtual key', async () => {
    const key = archiveKey()
    const error = await rejection(store.getShard(key).getMember('nope.wav'))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(`${key}#nope.wav`)
  })
})

describe('a missing archive', () => {
  it('getMember() is ShardReadError naming the archive and member, caused by ObjectNotFoundError', async () => {
    const key = s3.key('shards/missing.tar')
    const error = await rejection(store.getShard(key).getMember('0001.wav'))
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).archiveKey).toBe(key)
    expect((error as ShardReadError).memberPath).toBe('0001.wav')
    expect((error as ShardReadError).cause).toBeInstanceOf(ObjectNotFoundError)
  })

  it('getManifest(), iterEntries(), iterObjects() and iterArchiveMembers() are ShardReadError naming the archive', async () => {
    const key = s3.key('shards/missing.tar.gz')
    const shard = store.getShard(key)
    // Each call starts when the previous one is checked: a call started early could fail before its
    // rejection is awaited (an unhandled rejection on a slower server).
    for (const attempt of [
      () => Array.fromAsync(shard.getManifest()),
      () => Array.fromAsync(shard.iterEntries()),
      () => Array.fromAsync(shard.iterObjects()),
      () => Array.fromAsync(shard.iterArchiveMembers()),
    ]) {
      const error = await rejection(attempt())
      expect(error).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).archiveKey).toBe(key)
      expect((error as ShardReadError).cause).toBeInstanceOf(ObjectNotFoundError)
    }
  })
})

describe('an archive written by someone else', () => {
  let key: string

  beforeAll(async () => {
    key = s3.key('shards/foreign.tar')
    const listed = [{ name: 'a.txt', data: 'A', id: 'a' }]
    await put(
      key,
      await buildTar([
        { name: 'dir', type: 'directory' },
        { name: '__manifest__.jsonl', data: internalManifestFor(key, listed) },
        { name: 'a.txt', data: 'A' },
        { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'hard', type: 'link', linkname: 'a.txt' },
        { name: 'dir/b.txt', data: 'BB' },
      ]),
    )
  })

  it('iterObjects() skips links and directories and gives unlisted members a minimal entry', async () => {
    const got = []
    for await (const { entry, body } of store.getShard(key).iterObjects()) got.push([entry, await body.text()])
    expect(got).toStrictEqual([
      [{ kind: 'file', key: `${key}#a.txt`, member_path: 'a.txt', id: 'a', meta: null, size_bytes: 1, archive_key: key }, 'A'],
      [{ kind: 'file', member_path: 'dir/b.txt', size_bytes: 2, archive_key: key, key: `${key}#dir/b.txt` }, 'BB'],
    ])
  })

  it('iterArchiveMembers() gives the regular members only', async () => {
    const got = await Array.fromAsync(store.getShard(key).iterArchiveMembers())
    expect(got.map(({ entry }) => entry.member_path)).toEqual(['__manifest__.jsonl', 'a.txt', 'dir/b.txt'])
  })

  it('getMember() of a link is ShardReadError, never followed', async () => {
    for (const path of ['link', 'hard', 'dir']) {
      const error = await rejection(store.getShard(key).getMember(path))
      expect(error, path).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).memberPath).toBe(path)
    }
  })

  it('an archive without an internal manifest: iterEntries() and iterObjects() are ShardReadError, iterArchiveMembers() reads it', async () => {
    const bare = s3.key('shards/bare.tar')
    await put(bare, await buildTar([{ name: 'x.txt', data: 'x' }]))
    // Each attempt starts only when the previous one is checked (no unhandled rejection meanwhile).
    for (const attempt of [
      () => Array.fromAsync(store.getShard(bare).iterEntries()),
      () => Array.fromAsync(store.getShard(bare).iterObjects()),
    ]) {
      const error = await rejection(attempt())
      expect(error).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).archiveKey).toBe(bare)
    }
    const got = []
    for await (const { entry, body } of store.getShard(bare).iterArchiveMembers()) got.push([entry.member_path, await body.text()])
    expect(got).toEqual([['x.txt', 'x']])
  })
})
