/**
 * Manifest: the three backings (an S3 key, entries in memory, a shard's internal manifest),
 * fromRef, async iteration with refs resolved (each manifest read once), filterByPrefix, and the
 * typed errors of bad manifests.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { type FileEntry, InvalidManifestError, type ManifestEntry, ManifestNotFoundError, type ShardEntry } from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore

async function put(key: string, body: Uint8Array | string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

async function putManifest(key: string, entries: object[]): Promise<void> {
  await put(key, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''))
}

const file = (key: string, extra: Partial<FileEntry> = {}): FileEntry => ({ kind: 'file', key, ...extra })

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

describe('fromKey', () => {
  it('reads the manifest at the key, refs resolved, unknown fields kept', async () => {
    const key = s3.key('k/manifest.jsonl')
    const child = s3.key('k/child.jsonl')
    await putManifest(child, [file('c', { extra: { deep: [1, 2] } })])
    await put(
      key,
      `${JSON.stringify(file('a'))}\r\n\n${JSON.stringify({ kind: 'manifest_ref', key: child })}\n${JSON.stringify(file('b'))}\n`,
    )
    const manifest = Manifest.fromKey(store, key)
    expect(manifest.key).toBe(key)
    expect(manifest.store).toBe(store)
    expect(String(manifest)).toBe(`Manifest(key=${key})`)
    expect(await Array.fromAsync(manifest)).toStrictEqual([file('a'), file('c', { extra: { deep: [1, 2] } }), file('b')])
    expect(await Array.fromAsync(manifest.iterEntries({ resolveRefs: false }))).toStrictEqual([
      file('a'),
      { kind: 'manifest_ref', key: child },
      file('b'),
    ])
    // Iterable again: nothing is cached or consumed.
    expect(await Array.fromAsync(manifest)).toHaveLength(3)
  })

  it('nothing is read until the manifest is iterated', async () => {
    const client = s3.s3.createClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const manifest = counted.getManifest(s3.key('k/manifest.jsonl'))
    manifest.iterEntries()
    manifest.iterObjects()
    expect(counts.GetObjectCommand ?? 0).toBe(0)
    expect(await Array.fromAsync(manifest)).toHaveLength(3)
    expect(counts.GetObjectCommand).toBe(2)
    client.destroy()
  })

  it('a missing manifest is ManifestNotFoundError naming the key', async () => {
    const key = s3.key('k/missing.jsonl')
    const error = await rejection(Array.fromAsync(Manifest.fromKey(store, key)))
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect((error as ManifestNotFoundError).key).toBe(key)
  })

  it('a bad line is InvalidManifestError with the key and line number', async () => {
    const key = s3.key('k/bad.jsonl')
    await put(key, `${JSON.stringify(file('a'))}\n\n{"kind":"file"}\n`)
    const error = await rejection(Array.fromAsync(Manifest.fromKey(store, key)))
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(key)
    expect((error as InvalidManifestError).lineNumber).toBe(3)
  })

  it('a bad line in a referenced manifest names that manifest', async () => {
    const key = s3.key('k/refs-bad.jsonl')
    const bad = s3.key('k/bad-kind.jsonl')
    await put(bad, '{"kind":"folder","key":"x"}\n')
    await putManifest(key, [{ kind: 'manifest_ref', key: bad }])
    const error = await rejection(Array.fromAsync(Manifest.fromKey(store, key)))
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect((error as InvalidManifestError).key).toBe(bad)
    expect((error as InvalidManifestError).lineNumber).toBe(1)
  })
})

describe('refs', () => {
  let a: string
  let b: string
  let c: string

  beforeAll(async () => {
    // a -> [a1, ref b, ref c, a2]; b -> [b1, ref c, ref a]; c -> [c1, ref b]: a diamond and cycles.
    a = s3.key('refs/a.jsonl')
    b = s3.key('refs/b.jsonl')
    c = s3.key('refs/c.jsonl')
    await putManifest(a, [file('a1'), { kind: 'manifest_ref', key: b }, { kind: 'manifest_ref', key: c }, file('a2')])
    await putManifest(b, [file('b1'), { kind: 'manifest_ref', key: c }, { kind: 'manifest_ref', key: a }])
    await putManifest(c, [file('c1'), { kind: 'manifest_ref', key: b }])
  })

  it('depth first, in file order, each manifest read once', async () => {
    const client = s3.s3.createClient()
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    expect(await Array.fromAsync(Manifest.fromKey(counted, a))).toStrictEqual([file('a1'), file('b1'), file('c1'), file('a2')])
    expect(counts.GetObjectCommand).toBe(3)
    client.destroy()
  })

  it('from entries in memory: the same traversal, the root not counted as visited', async () => {
    const entries: ManifestEntry[] = [file('m1'), { kind: 'manifest_ref', key: a }, { kind: 'manifest_ref', key: c }]
    expect(await Array.fromAsync(Manifest.fromEntries(store, entries))).toStrictEqual([
      file('m1'),
      file('a1'),
      file('b1'),
      file('c1'),
      file('a2'),
    ])
  })

  it('limit across a ref', async () => {
    expect(await Array.fromAsync(Manifest.fromKey(store, a).iterEntries({ limit: 2 }))).toStrictEqual([file('a1'), file('b1')])
  })
})

describe('fromEntries', () => {
  it('an array can be iterated many times; key is undefined', async () => {
    const entries: ManifestEntry[] = [file('x'), { kind: 'shard', archive_key: 'y.tar', compression: null }]
    const manifest = Manifest.fromEntries(store, entries)
    expect(manifest.key).toBeUndefined()
    expect(String(manifest)).toBe('Manifest(entries)')
    expect(await Array.fromAsync(manifest)).toStrictEqual(entries)
    expect(await Array.fromAsync(manifest)).toStrictEqual(entries)
    expect(await Array.fromAsync(manifest.iterEntries({ limit: 1 }))).toStrictEqual([file('x')])
  })

  it('an async iterable is read as it comes', async () => {
    async function* entries(): AsyncGenerator<ManifestEntry> {
      yield file('p')
      yield file('q')
    }
    expect(await Array.fromAsync(Manifest.fromEntries(store, entries()))).toStrictEqual([file('p'), file('q')])
  })
})

describe('fromRef', () => {
  it('a Manifest is returned as is, a string is a key, anything else entries', async () => {
    const byKey = Manifest.fromKey(store, 'some/manifest.jsonl')
    expect(Manifest.fromRef(store, byKey)).toBe(byKey)
    expect(Manifest.fromRef(store, 'other/manifest.jsonl').key).toBe('other/manifest.jsonl')
    const fromArray = Manifest.fromRef(store, [file('z')])
    expect(fromArray.key).toBeUndefined()
    expect(await Array.fromAsync(fromArray)).toStrictEqual([file('z')])
  })

  it('the store methods accept a Manifest', async () => {
    const manifest = Manifest.fromEntries(store, [file('one'), file('two')])
    expect(await Array.fromAsync(store.iterManifestEntries(manifest))).toStrictEqual([file('one'), file('two')])
    expect(await Array.fromAsync(store.getKeys(manifest))).toEqual(['one', 'two'])
  })
})

describe('a shard-backed manifest and filterByPrefix', () => {
  let archiveKey: string
  let shard: ShardEntry
  const members = [
    { name: 'clips/0001.wav', data: 'c1', id: 'c1' },
    { name: 'clips/0002.wav', data: 'c2', id: 'c2' },
    { name: 'notes/n.txt', data: 'n', id: 'n' },
  ]

  beforeAll(async () => {
    archiveKey = s3.key('fp/shards/shard-00000.tar.gz')
    await put(
      archiveKey,
      await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archiveKey, members) }, ...members], { gzip: true }),
    )
    shard = { kind: 'shard', archive_key: archiveKey, format: 'tar', compression: 'gzip' }
  })

  it('fromShard reads the internal manifest', async () => {
    const manifest = Manifest.fromShard(store, shard)
    expect(manifest.key).toBeUndefined()
    expect((await Array.fromAsync(manifest)).map((entry) => (entry as FileEntry).key)).toEqual(
      members.map((m) => `${archiveKey}#${m.name}`),
    )
  })

  it('filterByPrefix matches loose keys and virtual keys of members', async () => {
    const manifest = Manifest.fromEntries(store, [file(s3.key('fp/clips/loose.wav')), shard, file(s3.key('fp/other/x.wav'))])
    const keysFor = async (prefix: string) =>
      (await Array.fromAsync(manifest.filterByPrefix(prefix))).map((entry) => (entry as FileEntry).key)
    expect(await keysFor(s3.key('fp/clips/'))).toEqual([s3.key('fp/clips/loose.wav')])
    expect(await keysFor(`${archiveKey}#clips/`)).toEqual([`${archiveKey}#clips/0001.wav`, `${archiveKey}#clips/0002.wav`])
    expect(await keysFor(s3.key('fp/'))).toEqual([
      s3.key('fp/clips/loose.wav'),
      `${archiveKey}#clips/0001.wav`,
      `${archiveKey}#clips/0002.wav`,
      `${archiveKey}#notes/n.txt`,
      s3.key('fp/other/x.wav'),
    ])
    expect(await keysFor('nothing/')).toEqual([])
    // A prefix, not a substring: 'fp/clips/' is inside every key above but starts none.
    expect(await keysFor('fp/clips/')).toEqual([])
    expect(await keysFor('clips/')).toEqual([])
    const [member] = await Array.fromAsync(manifest.filterByPrefix(`${archiveKey}#notes/`))
    expect(member).toStrictEqual({
      kind: 'file',
      key: `${archiveKey}#notes/n.txt`,
      member_path: 'notes/n.txt',
      id: 'n',
      meta: null,
      size_bytes: 1,
      archive_key: archiveKey,
    })
  })

  it('listFiles with and without shards', async () => {
    const manifest = Manifest.fromEntries(store, [file('l'), shard])
    expect((await Array.fromAsync(manifest.listFiles())).map((entry) => (entry as FileEntry).key)).toEqual([
      'l',
      ...members.map((m) => `${archiveKey}#${m.name}`),
    ])
    expect(await Array.fromAsync(manifest.listFiles({ includeShards: false }))).toStrictEqual([file('l'), shard])
  })

  it('getKeys and iterObjects over a Manifest', async () => {
    const manifest = Manifest.fromEntries(store, [shard])
    expect(await Array.fromAsync(manifest.getKeys({ limit: 2 }))).toEqual([`${archiveKey}#clips/0001.wav`, `${archiveKey}#clips/0002.wav`])
    const got = []
    for await (const { entry, body } of manifest.iterObjects()) got.push([(entry as FileEntry).member_path, await body.text()])
    expect(got).toEqual(members.map((m) => [m.name, m.data]))
  })
})
