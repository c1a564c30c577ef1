/**
 * S3ExchangeStore against a real (local) S3: construction, objects, listings, manifest reads,
 * iterObjects (order, concurrency, limits, cancellation) and iterObjectsFromKeys.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, type RequestCounts, rejection } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  DEFAULT_LIMITS,
  type FileEntry,
  type ManifestEntry,
  ManifestNotFoundError,
  ObjectNotFoundError,
  S3ExchangeError,
  S3RequestError,
  type ShardEntry,
} from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let store: S3ExchangeStore
const extraClients: S3Client[] = []

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

afterAll(() => {
  for (const client of extraClients) client.destroy()
})

async function put(key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentType: contentType }))
}

async function putManifest(key: string, entries: object[]): Promise<void> {
  await put(key, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''), 'application/x-ndjson')
}

interface Member {
  name: string
  data: string | Uint8Array
  id?: string
}

/** Puts an archive whose first member is an internal manifest listing `members` (or `listed`). */
async function putArchive(key: string, members: Member[], options: { gzip?: boolean; listed?: Member[] } = {}): Promise<Buffer> {
  const manifest = internalManifestFor(key, options.listed ?? members)
  const archive = await buildTar([{ name: '__manifest__.jsonl', data: manifest }, ...members], { gzip: options.gzip })
  await put(key, archive)
  return archive
}

/** A store over a new client whose requests are counted, so counts do not mix between tests. */
function countedStore(): { store: S3ExchangeStore; counts: RequestCounts } {
  const client = s3.s3.createClient()
  extraClients.push(client)
  return { store: new S3ExchangeStore({ client, bucket: s3.bucket }), counts: countRequests(client) }
}

function md5(data: Uint8Array | string): string {
  return createHash('md5').update(data).digest('hex')
}

describe('constructor', () => {
  it('refuses a missing client', () => {
    expect(() => new S3ExchangeStore({ client: undefined as never, bucket: 'b' })).toThrow(ConfigurationError)
    expect(() => new S3ExchangeStore(undefined as never)).toThrow(ConfigurationError)
  })

  it('refuses an empty or missing bucket', () => {
    expect(() => new S3ExchangeStore({ client: s3.client, bucket: '' })).toThrow(ConfigurationError)
    expect(() => new S3ExchangeStore({ client: s3.client, bucket: undefined as never })).toThrow(ConfigurationError)
  })

  it('has the documented defaults', () => {
    const plain = new S3ExchangeStore({ client: s3.client, bucket: 'b' })
    expect(plain.client).toBe(s3.client)
    expect(plain.bucket).toBe('b')
    expect(plain.basePrefix).toBe('')
    expect(plain.defaultVars).toEqual({})
    expect(plain.inferId('a/b/clip-001.wav')).toBe('clip-001')
    expect(plain.inferId('a/b/shard.tar.gz')).toBe('shard.tar')
    expect(plain.inferId('a/b/noext')).toBe('noext')
    expect(plain.inferId('top.json')).toBe('top')
  })

  it('keeps the options it is given', () => {
    const inferId = (key: string) => `id:${key}`
    const custom = new S3ExchangeStore({ client: s3.client, bucket: 'b', basePrefix: 'prod', defaultVars: { a: 1 }, inferId })
    expect(custom.basePrefix).toBe('prod')
    expect(custom.defaultVars).toEqual({ a: 1 })
    expect(custom.inferId('x/y.wav')).toBe('id:x/y.wav')
  })

  it('context() carries the client, the bucket, the signal, the limits and the write options', () => {
    const signal = new AbortController().signal
    expect(store.context({ signal })).toEqual({ client: s3.client, bucket: s3.bucket, signal, limits: DEFAULT_LIMITS, writeOptions: {} })
  })

  it('isManifest and isShard look at the extension', () => {
    expect(store.isManifest('a/manifest.jsonl')).toBe(true)
    expect(store.isManifest('a/manifest.json')).toBe(false)
    expect(store.isShard('a/s.tar')).toBe(true)
    expect(store.isShard('a/s.tar.gz')).toBe(true)
    expect(store.isShard('a/s.tgz')).toBe(true)
    expect(store.isShard('a/s.gz')).toBe(false)
  })
})

describe('getObject', () => {
  let tarKey: string
  let tgzKey: string

  beforeAll(async () => {
    tarKey = s3.key('get/a.tar')
    tgzKey = s3.key('get/b.tar.gz')
    await put(s3.key('get/loose.txt'), 'loose bytes', 'text/plain')
    await putArchive(tarKey, [
      { name: 'm', data: 'member m' },
      { name: 'dir/n.bin', data: new Uint8Array([0, 1, 2, 255]) },
    ])
    await putArchive(tgzKey, [{ name: 'x/y.txt', data: 'gzip member' }], { gzip: true })
    await put(s3.key('get/notes#1.txt'), 'a key with a hash')
  })

  it('reads a loose object, with its key, size, etag and content type', async () => {
    const key = s3.key('get/loose.txt')
    const body = await store.getObject(key)
    expect(body.key).toBe(key)
    expect(body.size).toBe(11)
    expect(body.etag).toBe(md5('loose bytes'))
    expect(body.contentType).toBe('text/plain')
    expect(await body.text()).toBe('loose bytes')
  })

  it('a missing key is ObjectNotFoundError naming the key', async () => {
    const key = s3.key('get/missing.txt')
    const error = await rejection(store.getObject(key))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })

  it('a virtual key reads one member of a plain tar', async () => {
    const body = await store.getObject(`${tarKey}#dir/n.bin`)
    expect(body.key).toBe(`${tarKey}#dir/n.bin`)
    expect(body.archiveKey).toBe(tarKey)
    expect(body.memberPath).toBe('dir/n.bin')
    expect(body.size).toBe(4)
    expect([...(await body.bytes())]).toEqual([0, 1, 2, 255])
    expect(await (await store.getObject(`${tarKey}#m`)).text()).toBe('member m')
  })

  it('a virtual key reads one member of a tar.gz', async () => {
    const body = await store.getObject(`${tgzKey}#x/y.txt`)
    expect(body.key).toBe(`${tgzKey}#x/y.txt`)
    expect(await body.text()).toBe('gzip member')
  })

  it('a virtual key naming no member is ObjectNotFoundError naming the virtual key', async () => {
    const error = await rejection(store.getObject(`${tarKey}#nope`))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(`${tarKey}#nope`)
  })

  it("a key with '#' and no archive before it is an ordinary key", async () => {
    const key = s3.key('get/notes#1.txt')
    const body = await store.getObject(key)
    expect(body.key).toBe(key)
    expect(body.archiveKey).toBeUndefined()
    expect(await body.text()).toBe('a key with a hash')
  })

  it("a key with '#', no archive and no object is ObjectNotFoundError naming the whole key", async () => {
    const key = s3.key('get/none#1.txt')
    const error = await rejection(store.getObject(key))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })
})

describe('exists and getObjectMetadata', () => {
  it('exist: true and the metadata; missing: false and ObjectNotFoundError', async () => {
    const key = s3.key('meta/one.bin')
    await put(key, 'twelve bytes')
    expect(await store.exists(key)).toBe(true)
    const head = await store.getObjectMetadata(key)
    expect(head.ContentLength).toBe(12)
    expect(head.ETag).toBe(`"${md5('twelve bytes')}"`)

    const missing = s3.key('meta/missing.bin')
    expect(await store.exists(missing)).toBe(false)
    const error = await rejection(store.getObjectMetadata(missing))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(missing)
  })

  it('exists() does not take a server error for a missing key', async () => {
    // Fault injected under the SDK's deserializer: every HeadObject answers HTTP 500.
    const client = s3.s3.createClient({ maxAttempts: 1 })
    extraClients.push(client)
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'HeadObjectCommand') return next(args)
        return { response: { statusCode: 500, headers: {}, body: Readable.from([]) } } as never
      },
      { step: 'deserialize', priority: 'low', name: 'fault-head-500' },
    )
    const faulty = new S3ExchangeStore({ client, bucket: s3.bucket })
    const error = await rejection(faulty.exists(s3.key('meta/one.bin')))
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).statusCode).toBe(500)
    expect((error as S3RequestError).key).toBe(s3.key('meta/one.bin'))
  })
})

describe('cancellation of single calls', () => {
  it('getObject, exists and listKeys with an aborted signal reject with its AbortError', async () => {
    const controller = new AbortController()
    controller.abort()
    const { signal } = controller
    // One call at a time: a call started early could fail before its rejection is awaited.
    for (const attempt of [
      () => store.getObject(s3.key('meta/one.bin'), { signal }),
      () => store.exists(s3.key('meta/one.bin'), { signal }),
      () => store.exists(s3.key('meta/missing.bin'), { signal }),
      () => Array.fromAsync(store.listKeys(s3.key('meta/'), { signal })),
    ]) {
      const error = await rejection(attempt())
      expect((error as Error).name).toBe('AbortError')
      expect(error).not.toBeInstanceOf(S3ExchangeError)
    }
  })
})

describe('listKeys', () => {
  it('returns every key under the prefix across pages, and nothing outside it', async () => {
    const prefix = s3.key('list/in/')
    const keys = Array.from({ length: 1_005 }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`)
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => put(key, 'x')))
    await put(s3.key('list/in-not/00000'), 'outside')
    await put(s3.key('list/other'), 'outside')

    const { store: counted, counts } = countedStore()
    const listed = await Array.fromAsync(counted.listKeys(prefix))
    expect(listed.sort()).toEqual(keys)
    expect(counts.ListObjectsV2Command).toBeGreaterThanOrEqual(2)
  })

  it('an empty prefix of nothing yields nothing', async () => {
    expect(await Array.fromAsync(store.listKeys(s3.key('list/nothing-here/')))).toEqual([])
  })
})

describe('manifest reads', () => {
  let root: string
  let child: string
  let shardKey: string
  const shardMembers = [
    { name: 's1.txt', data: 'shard one', id: 's1' },
    { name: 'sub/s2.txt', data: 'shard two', id: 's2' },
  ]
  let shard: ShardEntry
  let rootEntries: ManifestEntry[]

  beforeAll(async () => {
    root = s3.key('m/root/manifest.jsonl')
    child = s3.key('m/root/manifests/part-1.jsonl')
    shardKey = s3.key('m/root/shards/shard-00000.tar')
    await put(s3.key('m/data/a.txt'), 'aaa')
    await put(s3.key('m/data/b.txt'), 'bbbb')
    await put(s3.key('m/data/c.txt'), 'ccccc')
    await put(s3.key('m/other/d.txt'), 'dd')
    await putArchive(shardKey, shardMembers)
    shard = { kind: 'shard', archive_key: shardKey, format: 'tar', compression: null, count: 2 }
    await putManifest(child, [
      { kind: 'file', key: s3.key('m/data/c.txt'), id: 'c' },
      { kind: 'file', key: s3.key('m/other/d.txt'), id: 'd' },
    ])
    rootEntries = [
      { kind: 'file', key: s3.key('m/data/a.txt'), id: 'a', meta: { n: 1 } },
      shard,
      { kind: 'manifest_ref', key: child },
      { kind: 'file', key: s3.key('m/data/b.txt'), id: 'b' },
    ]
    await putManifest(root, rootEntries)
  })

  const fileA = () => ({ kind: 'file', key: s3.key('m/data/a.txt'), id: 'a', meta: { n: 1 } })
  const fileB = () => ({ kind: 'file', key: s3.key('m/data/b.txt'), id: 'b' })
  const fileC = () => ({ kind: 'file', key: s3.key('m/data/c.txt'), id: 'c' })
  const fileD = () => ({ kind: 'file', key: s3.key('m/other/d.txt'), id: 'd' })
  const member = (i: number) => {
    const m = shardMembers[i] as Member
    return {
      kind: 'file',
      key: `${shardKey}#${m.name}`,
      member_path: m.name,
      id: m.id,
      meta: null,
      size_bytes: Buffer.byteLength(m.data),
      archive_key: shardKey,
    }
  }

  describe('iterManifestEntries', () => {
    it('by key: refs inlined in place, shards kept', async () => {
      expect(await Array.fromAsync(store.iterManifestEntries(root))).toStrictEqual([fileA(), shard, fileC(), fileD(), fileB()])
    })

    it('resolveRefs: false keeps the refs', async () => {
      expect(await Array.fromAsync(store.iterManifestEntries(root, { resolveRefs: false }))).toStrictEqual(rootEntries)
    })

    it('entries in memory: a manifest_ref to an S3 manifest is resolved', async () => {
      const entries: ManifestEntry[] = [fileB() as FileEntry, { kind: 'manifest_ref', key: child }]
      expect(await Array.fromAsync(store.iterManifestEntries(entries))).toStrictEqual([fileB(), fileC(), fileD()])
      expect(await Array.fromAsync(store.iterManifestEntries(entries, { resolveRefs: false }))).toStrictEqual(entries)
    })

    it('limit stops early, also inside a ref', async () => {
      expect(await Array.fromAsync(store.iterManifestEntries(root, { limit: 1 }))).toStrictEqual([fileA()])
      expect(await Array.fromAsync(store.iterManifestEntries(root, { limit: 3 }))).toStrictEqual([fileA(), shard, fileC()])
      expect(await Array.fromAsync(store.iterManifestEntries(root, { limit: 0 }))).toStrictEqual([])
      expect(await Array.fromAsync(store.iterManifestEntries(root, { limit: 100 }))).toHaveLength(5)
    })

    it('a missing manifest is ManifestNotFoundError', async () => {
      const key = s3.key('m/none/manifest.jsonl')
      const error = await rejection(Array.fromAsync(store.iterManifestEntries(key)))
      expect(error).toBeInstanceOf(ManifestNotFoundError)
      expect((error as ManifestNotFoundError).key).toBe(key)
    })

    it('a ref to a missing manifest is ManifestNotFoundError naming both', async () => {
      const key = s3.key('m/none/ref.jsonl')
      const error = await rejection(Array.fromAsync(store.iterManifestEntries([{ kind: 'manifest_ref', key }])))
      expect(error).toBeInstanceOf(ManifestNotFoundError)
      expect((error as ManifestNotFoundError).key).toBe(key)
    })
  })

  describe('getKeys', () => {
    it('expands shards into virtual keys by default, refs resolved', async () => {
      expect(await Array.fromAsync(store.getKeys(root))).toEqual([
        s3.key('m/data/a.txt'),
        `${shardKey}#s1.txt`,
        `${shardKey}#sub/s2.txt`,
        s3.key('m/data/c.txt'),
        s3.key('m/other/d.txt'),
        s3.key('m/data/b.txt'),
      ])
    })

    it('expandShards: false yields the archive key', async () => {
      expect(await Array.fromAsync(store.getKeys(root, { expandShards: false }))).toEqual([
        s3.key('m/data/a.txt'),
        shardKey,
        s3.key('m/data/c.txt'),
        s3.key('m/other/d.txt'),
        s3.key('m/data/b.txt'),
      ])
    })

    it('resolveRefs: false yields the ref key', async () => {
      expect(await Array.fromAsync(store.getKeys(root, { resolveRefs: false, expandShards: false }))).toEqual([
        s3.key('m/data/a.txt'),
        shardKey,
        child,
        s3.key('m/data/b.txt'),
      ])
    })

    it('limit counts members', async () => {
      expect(await Array.fromAsync(store.getKeys(root, { limit: 2 }))).toEqual([s3.key('m/data/a.txt'), `${shardKey}#s1.txt`])
    })
  })

  describe('listManifestFiles', () => {
    it('includeShards (default): shards replaced by their internal entries, enriched', async () => {
      expect(await Array.fromAsync(store.listManifestFiles(root))).toStrictEqual([fileA(), member(0), member(1), fileC(), fileD(), fileB()])
      expect(await Array.fromAsync(store.listManifestFiles(root, { includeShards: true }))).toHaveLength(6)
    })

    it('includeShards: false keeps the shard entries', async () => {
      expect(await Array.fromAsync(store.listManifestFiles(root, { includeShards: false }))).toStrictEqual([
        fileA(),
        shard,
        fileC(),
        fileD(),
        fileB(),
      ])
    })
  })

  describe('listByManifestPrefix', () => {
    it('matches loose keys and the virtual keys of shard members', async () => {
      expect(await Array.fromAsync(store.listByManifestPrefix(root, s3.key('m/data/')))).toStrictEqual([fileA(), fileC(), fileB()])
      expect(await Array.fromAsync(store.listByManifestPrefix(root, `${shardKey}#sub/`))).toStrictEqual([member(1)])
      expect(await Array.fromAsync(store.listByManifestPrefix(root, shardKey))).toStrictEqual([member(0), member(1)])
      expect(await Array.fromAsync(store.listByManifestPrefix(root, s3.key('m/nothing')))).toStrictEqual([])
      expect(await Array.fromAsync(store.listByManifestPrefix(root, 'm/data/'))).toStrictEqual([])
    })
  })

  describe('getManifest', () => {
    it('a .jsonl key: the manifest', async () => {
      const manifest = store.getManifest(root)
      expect(manifest).toBeInstanceOf(Manifest)
      expect(manifest.key).toBe(root)
      expect(await Array.fromAsync(manifest.iterEntries({ resolveRefs: false }))).toStrictEqual(rootEntries)
    })

    it("an archive key: the shard's internal manifest", async () => {
      const manifest = store.getManifest(shardKey)
      expect(manifest.key).toBeUndefined()
      const expected = internalManifestFor(shardKey, shardMembers)
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
      expect(await Array.fromAsync(manifest)).toStrictEqual(expected)
      expect(expected).toHaveLength(2)
    })
  })

  describe('iterObjects over a mixed manifest', () => {
    it('yields loose objects, shard members and ref entries in manifest order, with their bytes', async () => {
      const got = []
      for await (const { entry, body } of store.iterObjects(root, { concurrency: 3 })) {
        got.push([entry, await body.text()])
      }
      expect(got).toStrictEqual([
        [fileA(), 'aaa'],
        [member(0), 'shard one'],
        [member(1), 'shard two'],
        [fileC(), 'ccccc'],
        [fileD(), 'dd'],
        [fileB(), 'bbbb'],
      ])
    })

    it('expandShards: false yields the shard entry with the whole archive as its body', async () => {
      const archive = await buildTar(
        [{ name: '__manifest__.jsonl', data: internalManifestFor(shardKey, shardMembers) }, ...shardMembers],
        {},
      )
      const got: [ManifestEntry, Uint8Array][] = []
      for await (const { entry, body } of store.iterObjects(root, { expandShards: false })) got.push([entry, await body.bytes()])
      expect(got.map(([entry]) => entry)).toStrictEqual([fileA(), shard, fileC(), fileD(), fileB()])
      expect(Buffer.from((got[1] as [ManifestEntry, Uint8Array])[1]).equals(archive)).toBe(true)
    })

    it('getObjects is iterObjects', async () => {
      const keys = []
      for await (const { entry, body } of store.getObjects(root, { limit: 2 })) {
        keys.push(entry.kind === 'file' ? entry.key : '')
        body.destroy()
      }
      expect(keys).toEqual([s3.key('m/data/a.txt'), `${shardKey}#s1.txt`])
    })
  })
})

describe('iterObjects over many loose objects', () => {
  const count = 200
  let manifestKey: string
  const contents: Buffer[] = []

  beforeAll(async () => {
    manifestKey = s3.key('many/manifest.jsonl')
    for (let i = 0; i < count; i++) contents.push(randomBytes((i * 7919) % 150_000))
    const keys = contents.map((_, i) => s3.key(`many/obj-${String(i).padStart(3, '0')}.bin`))
    for (let i = 0; i < count; i += 25) {
      await Promise.all(keys.slice(i, i + 25).map((key, j) => put(key, contents[i + j] as Buffer)))
    }
    await putManifest(
      manifestKey,
      keys.map((key, i) => ({ kind: 'file', key, id: `obj-${i}` })),
    )
  })

  it('keeps manifest order at concurrency 8, with the right bytes', async () => {
    let i = 0
    const mismatches: number[] = []
    for await (const { entry, body } of store.iterObjects(manifestKey, { concurrency: 8 })) {
      expect(entry).toStrictEqual({ kind: 'file', key: s3.key(`many/obj-${String(i).padStart(3, '0')}.bin`), id: `obj-${i}` })
      const bytes = await body.bytes()
      if (!Buffer.from(bytes).equals(contents[i] as Buffer)) mismatches.push(i)
      i++
    }
    expect(i).toBe(count)
    expect(mismatches).toEqual([])
  })

  it('keeps order with a small buffer budget (bodies that do not fit stay streams)', async () => {
    let i = 0
    for await (const { entry, body } of store.iterObjects(manifestKey, { concurrency: 8, maxBufferedBytes: 100_000, limit: 40 })) {
      expect(entry.kind === 'file' && entry.id).toBe(`obj-${i}`)
      expect(Buffer.from(await body.bytes()).equals(contents[i] as Buffer)).toBe(true)
      i++
    }
    expect(i).toBe(40)
  })

  it('limit stops early: one GET for the manifest and one per object yielded', async () => {
    const { store: counted, counts } = countedStore()
    const ids = []
    for await (const { entry, body } of counted.iterObjects(manifestKey, { limit: 5, concurrency: 16 })) {
      ids.push(entry.kind === 'file' ? entry.id : undefined)
      await body.bytes()
    }
    expect(ids).toEqual(['obj-0', 'obj-1', 'obj-2', 'obj-3', 'obj-4'])
    expect(counts.GetObjectCommand).toBe(6)
  })

  it('breaking out of the loop stops fetching', async () => {
    const { store: counted, counts } = countedStore()
    let seen = 0
    for await (const { body } of counted.iterObjects(manifestKey, { concurrency: 4 })) {
      await body.bytes()
      if (++seen === 3) break
    }
    expect(seen).toBe(3)
    // The manifest, three objects, and at most a window (2 × concurrency) fetched ahead.
    expect(counts.GetObjectCommand).toBeLessThanOrEqual(1 + 3 + 8)
  })

  it('an AbortSignal fired mid-iteration rejects the iteration with an AbortError, not a typed error', async () => {
    const controller = new AbortController()
    let seen = 0
    const error = await rejection(
      (async () => {
        for await (const { body } of store.iterObjects(manifestKey, { concurrency: 8, signal: controller.signal })) {
          await body.bytes()
          if (++seen === 10) controller.abort()
        }
      })(),
    )
    expect((error as Error).name).toBe('AbortError')
    expect(error).not.toBeInstanceOf(S3ExchangeError)
    expect(seen).toBeGreaterThanOrEqual(10)
    expect(seen).toBeLessThan(count)
  })

  it('the same with entries in memory (no manifest stream to cut)', async () => {
    const entries = contents.map((_, i) => ({ kind: 'file' as const, key: s3.key(`many/obj-${String(i).padStart(3, '0')}.bin`) }))
    const controller = new AbortController()
    let seen = 0
    const error = await rejection(
      (async () => {
        for await (const { body } of store.iterObjects(entries, { concurrency: 8, signal: controller.signal })) {
          await body.bytes()
          if (++seen === 10) controller.abort()
        }
      })(),
    )
    expect((error as Error).name).toBe('AbortError')
    expect(error).not.toBeInstanceOf(S3ExchangeError)
    expect(seen).toBeGreaterThanOrEqual(10)
    expect(seen).toBeLessThan(count)
  })

  it('a signal aborted before the start rejects at once with its AbortError', async () => {
    const controller = new AbortController()
    controller.abort()
    const error = await rejection(Array.fromAsync(store.iterObjects(manifestKey, { signal: controller.signal })))
    expect((error as Error).name).toBe('AbortError')
    expect(error).not.toBeInstanceOf(S3ExchangeError)
  })

  it('a missing loose object is ObjectNotFoundError naming its key, in its turn', async () => {
    const missing = s3.key('many/missing.bin')
    const entries: FileEntry[] = [
      { kind: 'file', key: s3.key('many/obj-000.bin') },
      { kind: 'file', key: missing },
      { kind: 'file', key: s3.key('many/obj-001.bin') },
    ]
    const seen: string[] = []
    const error = await rejection(
      (async () => {
        for await (const { entry, body } of store.iterObjects(entries)) {
          await body.bytes()
          seen.push((entry as FileEntry).key)
        }
      })(),
    )
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(missing)
    expect(seen).toEqual([s3.key('many/obj-000.bin')])
  })
})

describe('iterObjects cancelled while streaming a shard', () => {
  // Cancelling must reject with the signal's AbortError, whether the member body is cut mid-way
  // (the SDK stream fails with a plain Error('aborted')) or the shard was already received.
  async function iterateAndAbort(archiveKey: string, abortAt: number): Promise<{ seen: number; error: unknown }> {
    const controller = new AbortController()
    let seen = 0
    try {
      for await (const { body } of store.iterObjects([{ kind: 'shard', archive_key: archiveKey, compression: null }], {
        signal: controller.signal,
      })) {
        await body.bytes()
        if (++seen === abortAt) controller.abort()
      }
    } catch (error) {
      return { seen, error }
    }
    return { seen, error: undefined }
  }

  async function putShard(name: string, count: number, size: number): Promise<string> {
    const key = s3.key(`abort/${name}.tar`)
    const members = Array.from({ length: count }, (_, i) => ({ name: `m${i}`, data: Buffer.alloc(size, i) }))
    await putArchive(key, members)
    return key
  }

  it('a large shard: the iteration rejects with the AbortError', async () => {
    const key = await putShard('large', 50, 64 * 1024)
    const { seen, error } = await iterateAndAbort(key, 2)
    expect(seen).toBe(2)
    expect((error as Error | undefined)?.name).toBe('AbortError')
    expect(error).not.toBeInstanceOf(S3ExchangeError)
  })

  it('a small shard already received: the iteration still rejects', async () => {
    const key = await putShard('small', 20, 10)
    const { seen, error } = await iterateAndAbort(key, 2)
    expect((error as Error | undefined)?.name).toBe('AbortError')
    expect(seen).toBeLessThan(20)
  })
})

describe('iterObjectsFromKeys', () => {
  let tarKey: string
  let tgzKey: string
  const tarMembers: Member[] = [
    { name: 'm1.txt', data: 'member one', id: 'one' },
    { name: 'm2.txt', data: 'member two', id: 'two' },
    { name: 'm3.txt', data: 'member three', id: 'three' },
    { name: 'unlisted.bin', data: 'not in the manifest' },
  ]

  beforeAll(async () => {
    tarKey = s3.key('fk/a.tar')
    tgzKey = s3.key('fk/b.tar.gz')
    await putArchive(tarKey, tarMembers, { listed: tarMembers.slice(0, 3) })
    await putArchive(tgzKey, [{ name: 'g/x.wav', data: 'gzip x', id: 'gx' }], { gzip: true })
    await put(s3.key('fk/l1.wav'), 'loose one', 'audio/wav')
    await put(s3.key('fk/l2.txt'), 'loose two', 'text/plain')
    await put(s3.key('fk/hash#1.txt'), 'hash one')
    await put(s3.key('fk/hash#2.txt'), 'hash two')
  })

  const listed = (i: number) => {
    const m = tarMembers[i] as Member
    return { kind: 'file', key: `${tarKey}#${m.name}`, member_path: m.name, id: m.id, meta: null, size_bytes: Buffer.byteLength(m.data) }
  }
  const enriched = (i: number) => ({ ...listed(i), archive_key: tarKey })

  it('loose keys first in order, then members grouped by archive in archive order, one GET per archive', async () => {
    const { store: counted, counts } = countedStore()
    const keys = [`${tarKey}#m3.txt`, s3.key('fk/l2.txt'), `${tgzKey}#g/x.wav`, s3.key('fk/l1.wav'), `${tarKey}#m1.txt`]
    const got = []
    for await (const { entry, body } of counted.iterObjectsFromKeys(keys)) got.push([entry.key, await body.text()])
    expect(got).toEqual([
      [s3.key('fk/l2.txt'), 'loose two'],
      [s3.key('fk/l1.wav'), 'loose one'],
      [`${tarKey}#m1.txt`, 'member one'],
      [`${tarKey}#m3.txt`, 'member three'],
      [`${tgzKey}#g/x.wav`, 'gzip x'],
    ])
    expect(counts.GetObjectCommand).toBe(2 + 2)
    expect(counts.HeadObjectCommand ?? 0).toBe(0)
  })

  it('members listed in the internal manifest get its entry, enriched', async () => {
    const got = []
    for await (const { entry, body } of store.iterObjectsFromKeys([`${tarKey}#m2.txt`, `${tarKey}#m1.txt`])) {
      got.push(entry)
      body.destroy()
    }
    expect(got).toStrictEqual([enriched(0), enriched(1)])
  })

  it('the asked virtual key and the member path override what the internal manifest says; other fields are kept', async () => {
    const key = s3.key('fk/foreign.tar')
    const listedLine = { kind: 'file', key: 'written/elsewhere.wav', member_path: 'x.wav', id: 'x', meta: { a: 1 }, extra: [true] }
    await put(
      key,
      await buildTar([
        { name: 'x.wav', data: 'xx' },
        { name: '__manifest__.jsonl', data: `${JSON.stringify(listedLine)}\n` },
      ]),
    )
    const got = []
    for await (const { entry, body } of store.iterObjectsFromKeys([`${key}#x.wav`])) got.push([entry, await body.text()])
    expect(got).toStrictEqual([[{ ...listedLine, archive_key: key, member_path: 'x.wav', key: `${key}#x.wav` }, 'xx']])
  })

  it('members the internal manifest does not list get a minimal entry', async () => {
    const got = []
    for await (const { entry, body } of store.iterObjectsFromKeys([`${tarKey}#unlisted.bin`])) got.push([entry, await body.text()])
    expect(got).toStrictEqual([
      [
        { kind: 'file', key: `${tarKey}#unlisted.bin`, archive_key: tarKey, member_path: 'unlisted.bin', id: 'unlisted' },
        'not in the manifest',
      ],
    ])
  })

  it('the minimal entry uses the store inferId', async () => {
    const custom = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, inferId: (key) => `id(${key})` })
    const got = []
    for await (const { entry, body } of custom.iterObjectsFromKeys([`${tarKey}#unlisted.bin`, s3.key('fk/l1.wav')])) {
      got.push(entry.id)
      body.destroy()
    }
    expect(got).toEqual([`id(${s3.key('fk/l1.wav')})`, 'id(unlisted.bin)'])
  })

  it('loose entries carry id, size, etag and content type, without any HEAD', async () => {
    const { store: counted, counts } = countedStore()
    const got = []
    for await (const { entry, body } of counted.iterObjectsFromKeys([s3.key('fk/l1.wav'), s3.key('fk/l2.txt')])) {
      got.push(entry)
      await body.bytes()
    }
    expect(got).toStrictEqual([
      { kind: 'file', key: s3.key('fk/l1.wav'), id: 'l1', size_bytes: 9, etag: md5('loose one'), content_type: 'audio/wav' },
      { kind: 'file', key: s3.key('fk/l2.txt'), id: 'l2', size_bytes: 9, etag: md5('loose two'), content_type: 'text/plain' },
    ])
    expect(counts.HeadObjectCommand ?? 0).toBe(0)
    expect(counts.GetObjectCommand).toBe(2)
  })

  it('accepts an async iterable of keys', async () => {
    async function* keys() {
      yield s3.key('fk/l1.wav')
      yield `${tarKey}#m2.txt`
    }
    const got = []
    for await (const { entry, body } of store.iterObjectsFromKeys(keys())) got.push([entry.key, await body.text()])
    expect(got).toEqual([
      [s3.key('fk/l1.wav'), 'loose one'],
      [`${tarKey}#m2.txt`, 'member two'],
    ])
  })

  it('a missing loose key is ObjectNotFoundError; skipped with onMissing: skip', async () => {
    const missing = s3.key('fk/missing.wav')
    const error = await rejection(Array.fromAsync(store.iterObjectsFromKeys([s3.key('fk/l1.wav'), missing])))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(missing)

    const keys = []
    for await (const { entry, body } of store.iterObjectsFromKeys([missing, s3.key('fk/l1.wav')], { onMissing: 'skip' })) {
      keys.push(entry.key)
      body.destroy()
    }
    expect(keys).toEqual([s3.key('fk/l1.wav')])
  })

  it('a missing member is ObjectNotFoundError naming the virtual key, after the rest of its archive', async () => {
    const seen: string[] = []
    const error = await rejection(
      (async () => {
        for await (const { entry, body } of store.iterObjectsFromKeys([`${tarKey}#nope.txt`, `${tarKey}#m2.txt`])) {
          seen.push(entry.key)
          await body.bytes()
        }
      })(),
    )
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(`${tarKey}#nope.txt`)
    expect(seen).toEqual([`${tarKey}#m2.txt`])

    const keys = []
    for await (const { entry, body } of store.iterObjectsFromKeys([`${tarKey}#nope.txt`, `${tarKey}#m2.txt`, `${tgzKey}#g/x.wav`], {
      onMissing: 'skip',
    })) {
      keys.push(entry.key)
      body.destroy()
    }
    expect(keys).toEqual([`${tarKey}#m2.txt`, `${tgzKey}#g/x.wav`])
  })

  it("keys with '#' and no archive before it are read as ordinary keys", async () => {
    const keys = [s3.key('fk/hash#2.txt'), s3.key('fk/hash#1.txt')]
    const got = []
    for await (const { entry, body } of store.iterObjectsFromKeys(keys)) got.push([entry, await body.text()])
    expect(got).toStrictEqual([
      [{ kind: 'file', key: keys[0], id: 'hash#2', size_bytes: 8, etag: md5('hash two'), content_type: expect.any(String) }, 'hash two'],
      [{ kind: 'file', key: keys[1], id: 'hash#1', size_bytes: 8, etag: md5('hash one'), content_type: expect.any(String) }, 'hash one'],
    ])
  })

  it("a key with '#', no archive and no object is ObjectNotFoundError naming the whole key", async () => {
    const key = s3.key('fk/nohash#1.txt')
    const error = await rejection(Array.fromAsync(store.iterObjectsFromKeys([key])))
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    expect((error as ObjectNotFoundError).key).toBe(key)
  })

  it('limit counts loose objects and members, and stops before the next archive', async () => {
    const { store: counted, counts } = countedStore()
    const keys = [s3.key('fk/l1.wav'), `${tarKey}#m1.txt`, `${tarKey}#m2.txt`, `${tgzKey}#g/x.wav`]
    const got = []
    for await (const { entry, body } of counted.iterObjectsFromKeys(keys, { limit: 2 })) got.push([entry.key, await body.text()])
    expect(got).toEqual([
      [s3.key('fk/l1.wav'), 'loose one'],
      [`${tarKey}#m1.txt`, 'member one'],
    ])
    expect(counts.GetObjectCommand).toBe(2)
    expect(await Array.fromAsync(store.iterObjectsFromKeys(keys, { limit: 0 }))).toEqual([])
    expect(await Array.fromAsync(store.iterObjectsFromKeys([s3.key('fk/l1.wav'), s3.key('fk/l2.txt')], { limit: 1 }))).toHaveLength(1)
  })
})
