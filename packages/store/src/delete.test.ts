/**
 * Deleting against a real (local) S3: deleteKey and Shard.delete, deletePrefix (counts, regex as
 * Python's re.search, pagination and batches, refusals, dry runs, failures) and deleteManifest
 * (Python's counts on the fixture's mixed root, fences, dry runs, partial failures reported and not
 * thrown, manifests in memory, compacted manifests). Faults are injected at the HTTP layer only: a
 * loopback proxy, or SDK middleware that makes the server refuse some keys.
 */
import { join } from 'node:path'
import { type DeleteObjectsCommandInput, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, countRequests, internalManifestFor, rejection, type S3Proxy, startS3Proxy, uploadDirectory } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeleteReport } from './index.js'
import {
  DeleteRefusedError,
  InvalidManifestError,
  type ManifestEntry,
  ManifestNotFoundError,
  PartialDeleteError,
  serializeEntry,
} from './index.js'
import { Manifest } from './manifest.js'
import { Shard } from './shard.js'
import { S3ExchangeStore } from './store.js'

const fixture = join(import.meta.dirname, '../../../test/fixtures/python-s3exchange-0.1.1')
const s3 = useTestS3()
const server = testServer()
let store: S3ExchangeStore
const clients: S3Client[] = []
const proxies: S3Proxy[] = []

beforeAll(() => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  for (const proxy of proxies) await proxy.stop()
})

async function put(key: string, body: Uint8Array | string = 'x', bucket = s3.bucket): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
}

async function putAll(keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((key) => put(key)))
}

async function putManifest(key: string, entries: ManifestEntry[]): Promise<void> {
  await put(key, entries.map((entry) => `${serializeEntry(entry)}\n`).join(''))
}

/** Every key under `prefix`, sorted. */
async function keysUnder(prefix: string, on: S3ExchangeStore = store): Promise<string[]> {
  return (await Array.fromAsync(on.listKeys(prefix))).sort()
}

/** A store over a new client (so request counts do not mix), optionally through a proxy. */
function freshStore(options: { basePrefix?: string; endpoint?: string; maxAttempts?: number; bucket?: string } = {}) {
  const client = s3.s3.createClient({
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
  })
  clients.push(client)
  const counts = countRequests(client)
  return { store: new S3ExchangeStore({ client, bucket: options.bucket ?? s3.bucket, basePrefix: options.basePrefix }), counts, client }
}

/** A proxy in front of the server that answers HTTP 500 to the DeleteObjects requests `fail(n)` picks (n counts from 1). */
async function failingDeletes(fail: (n: number) => boolean): Promise<S3Proxy> {
  let n = 0
  const proxy = await startS3Proxy({
    target: s3.s3.endpoint,
    intercept: (request) => {
      if (request.method !== 'POST' || !new URL(request.url, 'http://x').searchParams.has('delete')) return undefined
      return fail(++n) ? { status: 500, code: 'InternalError' } : undefined
    },
  })
  proxies.push(proxy)
  return proxy
}

/** Makes the server refuse to delete `refused` keys (as S3 does with AccessDenied): they stay, and come back in `Errors`. */
function refuseKeys(client: S3Client, refused: Set<string>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'DeleteObjectsCommand') return next(args)
      const input = args.input as DeleteObjectsCommandInput
      const objects = input.Delete?.Objects ?? []
      const asked = objects.map((object) => object.Key ?? '').filter((key) => refused.has(key))
      const kept = objects.filter((object) => !refused.has(object.Key ?? ''))
      const result = await next({ ...args, input: { ...input, Delete: { ...input.Delete, Objects: kept } } })
      const output = result.output as { Errors?: { Key: string; Code: string; Message: string }[] }
      output.Errors = [...(output.Errors ?? []), ...asked.map((Key) => ({ Key, Code: 'AccessDenied', Message: 'Access Denied' }))]
      return result
    },
    { step: 'initialize', priority: 'low', name: 'test-refuse-keys' },
  )
}

describe('deleteKey', () => {
  it('deletes one object', async () => {
    const key = s3.key('dk/plain/a.txt')
    await put(key)
    await put(s3.key('dk/plain/b.txt'))
    await store.deleteKey(key)
    expect(await keysUnder(s3.key('dk/plain/'))).toEqual([s3.key('dk/plain/b.txt')])
  })

  it("refuses '' (DeleteRefusedError naming the key), even with within: ''", async () => {
    for (const options of [{}, { within: '' }]) {
      const error = await rejection(store.deleteKey('', options))
      expect(error).toBeInstanceOf(DeleteRefusedError)
      expect((error as DeleteRefusedError).key).toBe('')
    }
  })

  it('refuses keys outside basePrefix (a folder fence), with the key and the fence; nothing is deleted', async () => {
    const fence = s3.key('dk/f1/fence')
    const outside = [s3.key('dk/f1/other/x.txt'), s3.key('dk/f1/fence-other/x.txt'), s3.key('dk/f1/fencex'), s3.key('dk/f1/fenc')]
    await putAll([...outside, `${fence}/in.txt`])
    const { store: fenced, counts } = freshStore({ basePrefix: fence })
    for (const key of outside) {
      const error = await rejection(fenced.deleteKey(key))
      expect(error).toBeInstanceOf(DeleteRefusedError)
      expect((error as DeleteRefusedError).key).toBe(key)
      expect((error as DeleteRefusedError).fence).toBe(fence)
    }
    expect(counts.DeleteObjectCommand ?? 0).toBe(0)
    expect(await keysUnder(s3.key('dk/f1/'))).toEqual([...outside, `${fence}/in.txt`].sort())

    await fenced.deleteKey(`${fence}/in.txt`)
    expect(await fenced.exists(`${fence}/in.txt`)).toBe(false)
  })

  it("`within` overrides basePrefix; within: '' allows the whole bucket", async () => {
    const { store: fenced } = freshStore({ basePrefix: s3.key('dk2/fence') })
    const other = s3.key('dk2/other/x.txt')
    const anywhere = s3.key('dk2-elsewhere.txt')
    await putAll([other, anywhere])
    await expect(fenced.deleteKey(other, { within: s3.key('dk2/fence/sub') })).rejects.toBeInstanceOf(DeleteRefusedError)
    await fenced.deleteKey(other, { within: s3.key('dk2/other') })
    await fenced.deleteKey(anywhere, { within: '' })
    expect(await fenced.exists(other)).toBe(false)
    expect(await fenced.exists(anywhere)).toBe(false)
  })

  it('Shard.delete deletes the archive, inside the fence only', async () => {
    const fence = s3.key('dk3/fence')
    const { store: fenced } = freshStore({ basePrefix: fence })
    const shard = await fenced.putShardArchive(`${fence}/shards/s.tar`, [{ source: new Uint8Array([1, 2, 3]), member_path: 'a.bin' }], {
      compression: null,
    })
    expect(await fenced.exists(shard.archiveKey)).toBe(true)
    await shard.delete()
    expect(await fenced.exists(shard.archiveKey)).toBe(false)

    const outsideKey = s3.key('dk3/elsewhere/s.tar')
    await put(outsideKey)
    const outsideShard = Shard.fromKey(fenced, outsideKey)
    const error = await rejection(outsideShard.delete())
    expect(error).toBeInstanceOf(DeleteRefusedError)
    expect((error as DeleteRefusedError).key).toBe(outsideKey)
    expect(await fenced.exists(outsideKey)).toBe(true)
    await outsideShard.delete({ within: s3.key('dk3/elsewhere') })
    expect(await fenced.exists(outsideKey)).toBe(false)
  })
})

describe('deletePrefix', () => {
  it('deletes every key under the prefix and returns the count', async () => {
    const inside = ['a.txt', 'b.txt', 'sub/c.txt', 'sub/deep/d.txt', 'e'].map((name) => s3.key(`dp/count/${name}`))
    const beside = [s3.key('dp/count-other/x.txt'), s3.key('dp/countx')]
    await putAll([...inside, ...beside])
    expect(await store.deletePrefix(s3.key('dp/count/'))).toBe(5)
    expect(await keysUnder(s3.key('dp/'))).toEqual(beside.sort())
    expect(await store.deletePrefix(s3.key('dp/count/'))).toBe(0)
  })

  it("regex, as a string or a RegExp, matches anywhere in the key (Python's re.search)", async () => {
    const p = s3.key('dp/re/')
    const names = ['one.wav', 'two.txt', 'sub/xzzy.txt', 'zz/three.bin', 'four.wav.bak', 'five.WAV']
    const reset = () => putAll(names.map((name) => `${p}${name}`))
    await reset()
    expect(await store.deletePrefix(p, { regex: 'zz' })).toBe(2)
    expect(await keysUnder(p)).toEqual(['five.WAV', 'four.wav.bak', 'one.wav', 'two.txt'].map((n) => `${p}${n}`))

    await reset()
    expect(await store.deletePrefix(p, { regex: /\.wav$/ })).toBe(1)
    expect(await store.deletePrefix(p, { regex: /\.wav$/i })).toBe(1)
    expect(await store.deletePrefix(p, { regex: '\\.wav' })).toBe(1)
    expect(await keysUnder(p)).toEqual(['sub/xzzy.txt', 'two.txt', 'zz/three.bin'].map((n) => `${p}${n}`))

    // Anchors work as in Python: '^' is the start of the whole key, not of the part after the prefix.
    expect(await store.deletePrefix(p, { regex: '^two' })).toBe(0)
    expect(await store.deletePrefix(p, { regex: `^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}two` })).toBe(1)
    expect(await keysUnder(p)).toEqual(['sub/xzzy.txt', 'zz/three.bin'].map((n) => `${p}${n}`))
  })

  it('a RegExp with the g or y flag matches every key alike (no state carried between keys)', async () => {
    const p = s3.key('dp/re-global/')
    const wavs = Array.from({ length: 6 }, (_, i) => `${p}${i}.wav`)
    await putAll([...wavs, `${p}keep.txt`])
    expect(await store.deletePrefix(p, { regex: /\.wav$/g, dryRun: true })).toBe(6)
    expect(await store.deletePrefix(p, { regex: /\.wav$/g })).toBe(6)
    expect(await keysUnder(p)).toEqual([`${p}keep.txt`])
    await putAll(wavs)
    expect(await store.deletePrefix(p, { regex: /wav/y })).toBe(0)
    expect(await store.deletePrefix(p, { regex: new RegExp(`${p}\\d`, 'gy') })).toBe(6)
  })

  describe('more than 1,000 keys', () => {
    const p = () => s3.key('dp/bulk/')
    const keys = () => Array.from({ length: 1_050 }, (_, i) => `${p()}${String(i).padStart(5, '0')}.bin`)

    beforeAll(async () => {
      await putAll(keys())
    })

    it('a failing DeleteObjects request: PartialDeleteError with the errors by key and the count deleted', async () => {
      // The first DeleteObjects request (the 1,000 keys of the first page) is answered 500; the
      // second (the 50 keys of the second page) goes through.
      const proxy = await failingDeletes((n) => n === 1)
      const { store: faulty } = freshStore({ endpoint: proxy.endpoint, maxAttempts: 1 })
      const error = await rejection(faulty.deletePrefix(p()))
      expect(error).toBeInstanceOf(PartialDeleteError)
      const partial = error as PartialDeleteError
      expect(partial.deletedCount).toBe(50)
      expect(Object.keys(partial.errors).sort()).toEqual(keys().slice(0, 1000))
      expect(partial.errors[keys()[0] as string]).toMatch(/500/)
      expect(await keysUnder(p())).toEqual(keys().slice(0, 1000))
      await putAll(keys().slice(1000))
    })

    it('every DeleteObjects answered 500 (retries included): PartialDeleteError, deletedCount 0, nothing deleted', async () => {
      const proxy = await failingDeletes(() => true)
      const { store: faulty } = freshStore({ endpoint: proxy.endpoint })
      const error = await rejection(faulty.deletePrefix(p(), { regex: '0000[0-9]\\.bin$' }))
      expect(error).toBeInstanceOf(PartialDeleteError)
      expect((error as PartialDeleteError).deletedCount).toBe(0)
      expect(Object.keys((error as PartialDeleteError).errors).sort()).toEqual(keys().slice(0, 10))
      expect(await keysUnder(p())).toHaveLength(1_050)
    })

    it('dryRun counts across pages and deletes nothing', async () => {
      const { store: counted, counts } = freshStore()
      expect(await counted.deletePrefix(p(), { dryRun: true })).toBe(1_050)
      expect(await counted.deletePrefix(p(), { dryRun: true, regex: '5\\.bin$' })).toBe(105)
      expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
      expect(counts.DeleteObjectCommand ?? 0).toBe(0)
      expect(await keysUnder(p())).toHaveLength(1_050)
    })

    it('lists every page and deletes in several DeleteObjects requests of at most 1,000', async () => {
      const { store: counted, counts } = freshStore()
      expect(await counted.deletePrefix(p())).toBe(1_050)
      expect(counts.ListObjectsV2Command).toBeGreaterThanOrEqual(2)
      expect(counts.DeleteObjectsCommand).toBe(2)
      expect(await keysUnder(p())).toEqual([])
    })
  })

  it("refuses '', '/' and '///' always, whatever the fence; nothing is deleted", async () => {
    const keep = s3.key('dp/refuse/keep.txt')
    await put(keep)
    const { store: counted, counts } = freshStore()
    const { store: fenced } = freshStore({ basePrefix: s3.key('dp/refuse') })
    for (const [on, options] of [
      [counted, {}],
      [counted, { within: '' }],
      [counted, { dryRun: true }],
      [fenced, {}],
      [fenced, { within: '' }],
    ] as const) {
      for (const prefix of ['', '/', '///']) {
        const error = await rejection(on.deletePrefix(prefix, options))
        expect(error).toBeInstanceOf(DeleteRefusedError)
        expect((error as DeleteRefusedError).key).toBe(prefix)
      }
    }
    expect(counts.ListObjectsV2Command ?? 0).toBe(0)
    expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
    expect(await store.exists(keep)).toBe(true)
  })

  it("with basePrefix 'a': 'b/', 'ab/' and 'ab' are outside ('a' is a folder); 'a' deletes only 'a/…'", async () => {
    const a = s3.key('dp/fence/a')
    const all = [`${a}/x.txt`, `${a}/sub/y.txt`, `${a}b/x.txt`, `${a}-other/x.txt`, s3.key('dp/fence/b/x.txt')]
    await putAll(all)
    const { store: fenced, counts } = freshStore({ basePrefix: a })
    for (const prefix of [s3.key('dp/fence/b/'), `${a}b/`, `${a}b`, `${a}-other/`, s3.key('dp/fence/')]) {
      const error = await rejection(fenced.deletePrefix(prefix))
      expect(error).toBeInstanceOf(DeleteRefusedError)
      expect((error as DeleteRefusedError).key).toBe(prefix)
      expect((error as DeleteRefusedError).fence).toBe(a)
    }
    expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
    expect(await keysUnder(s3.key('dp/fence/'))).toEqual(all.sort())

    // The prefix equal to the fence is the fence's folder: not 'ab/…' nor 'a-other/…'.
    expect(await fenced.deletePrefix(a, { dryRun: true })).toBe(2)
    expect(await fenced.deletePrefix(a)).toBe(2)
    expect(await keysUnder(s3.key('dp/fence/'))).toEqual([`${a}-other/x.txt`, `${a}b/x.txt`, s3.key('dp/fence/b/x.txt')].sort())

    // A fence given with a trailing slash is the same folder; `within` overrides it.
    await put(`${a}/again.txt`)
    const { store: slashed } = freshStore({ basePrefix: `${a}/` })
    await expect(slashed.deletePrefix(`${a}b/`)).rejects.toBeInstanceOf(DeleteRefusedError)
    expect(await slashed.deletePrefix(`${a}/`)).toBe(1)
    expect(await fenced.deletePrefix(`${a}b/`, { within: `${a}b` })).toBe(1)
    expect(await fenced.deletePrefix(s3.key('dp/fence/'), { within: '' })).toBe(2)
    expect(await keysUnder(s3.key('dp/fence/'))).toEqual([])
  })

  it('dryRun counts what would go and deletes nothing', async () => {
    const p = s3.key('dp/dry/')
    await putAll([`${p}a.wav`, `${p}b.wav`, `${p}c.txt`])
    const { store: counted, counts } = freshStore()
    expect(await counted.deletePrefix(p, { dryRun: true })).toBe(3)
    expect(await counted.deletePrefix(p, { dryRun: true, regex: /\.wav$/ })).toBe(2)
    expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
    expect(await keysUnder(p)).toHaveLength(3)
  })
})

describe.skipIf(!server.supports('creating buckets'))(
  'deleteManifest on the fixture (Python s3exchange 0.1.1), in a bucket of its own (needs creating buckets)',
  () => {
    const root = 'exchange/shared/mixed/manifest.jsonl'
    const loose = (i: number) => `exchange/shared/loose/file-00${i}.txt`
    const shard0 = 'exchange/shared/shards/shard-00000.tar.gz'
    const referenced = [
      'exchange/shared/loose/manifest.jsonl',
      'exchange/shared/parts/manifest.jsonl',
      'exchange/shared/parts/manifests/part-20261123-234044-3afdeab9.jsonl',
      'exchange/shared/parts/manifests/part-20261123-234044-bca8efaa.jsonl',
    ]

    /** The fixture, in a bucket of its own (deletions must not disturb other tests, and the whole bucket is listed); its keys. */
    async function freshFixture(): Promise<{ fixtureStore: S3ExchangeStore; keys: string[] }> {
      const bucket = await s3.s3.createOwnBucket()
      const keys = await uploadDirectory(s3.client, bucket, join(fixture, 'bucket'))
      return { fixtureStore: new S3ExchangeStore({ client: s3.client, bucket }), keys: keys.sort() }
    }

    const without = (keys: string[], gone: string[]) => keys.filter((key) => !gone.includes(key))

    it("the mixed root: Python's counts, and exactly those keys gone", async () => {
      const { fixtureStore, keys } = await freshFixture()
      // mixed/manifest.jsonl is: a ref to loose/manifest.jsonl (file-000..004), a shard
      // (shard-00000.tar.gz), a file (file-000 again, id "dup"), a ref to parts/manifest.jsonl (two
      // parts: file-000..001 and file-002..004). Python's delete_manifest iterates
      // iter_entries(resolve_refs=True), which inlines refs and never yields a manifest_ref entry,
      // so its `manifest_ref` branch never runs and only the root is a manifest to delete:
      //   objects:   {file-000, …, file-004}   → 5 (file-000 appears three times, counted once)
      //   archives:  {shard-00000.tar.gz}      → 1
      //   manifests: {mixed/manifest.jsonl}    → 1
      //   errors:    {}
      const report = await fixtureStore.deleteManifest(root)
      expect(report).toStrictEqual({
        deletedObjectCount: 5,
        deletedArchiveCount: 1,
        deletedManifestCount: 1,
        errors: {},
        outsideFence: [],
        dryRun: false,
        keys: { objects: [0, 1, 2, 3, 4].map(loose), archives: [shard0], manifests: [root] },
      } satisfies DeleteReport)
      const gone = [...[0, 1, 2, 3, 4].map(loose), shard0, root]
      // The referenced manifests and parts remain (as with Python), as does everything else.
      expect(await keysUnder('', fixtureStore)).toEqual(without(keys, gone))
      for (const key of referenced) expect(keys).toContain(key)
      expect(gone.every((key) => keys.includes(key))).toBe(true)
    })

    it('referencedManifests: true also deletes every manifest reached through refs (5 manifests)', async () => {
      const { fixtureStore, keys } = await freshFixture()
      const report = await fixtureStore.deleteManifest(root, { referencedManifests: true })
      expect(report.deletedObjectCount).toBe(5)
      expect(report.deletedArchiveCount).toBe(1)
      expect(report.deletedManifestCount).toBe(5)
      expect(report.errors).toEqual({})
      expect([...report.keys.manifests].sort()).toEqual([root, ...referenced].sort())
      expect(await keysUnder('', fixtureStore)).toEqual(without(keys, [...[0, 1, 2, 3, 4].map(loose), shard0, root, ...referenced]))
    })

    it('dedupe: false gives the same counts; Manifest.delete is the same call', async () => {
      const { fixtureStore, keys } = await freshFixture()
      const report = await fixtureStore.getManifest(root).delete({ dedupe: false })
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([5, 1, 1])
      expect(report.errors).toEqual({})
      expect(await keysUnder('', fixtureStore)).toEqual(without(keys, [...[0, 1, 2, 3, 4].map(loose), shard0, root]))
    })

    it('dryRun reports the keys and counts and deletes nothing', async () => {
      const { fixtureStore, keys } = await freshFixture()
      const { store: counted, counts } = freshStore({ bucket: fixtureStore.bucket })
      const report = await counted.deleteManifest(root, { dryRun: true, referencedManifests: true })
      expect(report.dryRun).toBe(true)
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([5, 1, 5])
      expect(report.keys.objects).toEqual([0, 1, 2, 3, 4].map(loose))
      expect(report.keys.archives).toEqual([shard0])
      expect([...report.keys.manifests].sort()).toEqual([root, ...referenced].sort())
      expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
      expect(counts.DeleteObjectCommand ?? 0).toBe(0)
      expect(await keysUnder('', fixtureStore)).toEqual(keys)
    })

    it('deleteManifests: false keeps the manifest', async () => {
      const { fixtureStore, keys } = await freshFixture()
      const report = await fixtureStore.deleteManifest(root, { deleteManifests: false, referencedManifests: true })
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([5, 1, 0])
      expect(await keysUnder('', fixtureStore)).toEqual(without(keys, [...[0, 1, 2, 3, 4].map(loose), shard0]))
    })

    it('the compacted manifest (archive members with archive_key + member_path) deletes the archive, not virtual keys', async () => {
      const { fixtureStore, keys } = await freshFixture()
      const { store: counted, client } = freshStore({ bucket: fixtureStore.bucket })
      const asked: string[] = []
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'DeleteObjectsCommand') {
            asked.push(...(args.input as { Delete: { Objects: { Key: string }[] } }).Delete.Objects.map((o) => o.Key))
          }
          return next(args)
        },
        { step: 'initialize', name: 'test-record-deletes' },
      )
      const compact = 'exchange/shared/mixed/compact.jsonl'
      const report = await counted.deleteManifest(compact)
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([5, 1, 1])
      expect(report.keys.archives).toEqual([shard0])
      expect(asked.some((key) => key.includes('#'))).toBe(false)
      expect(asked.sort()).toEqual([...[0, 1, 2, 3, 4].map(loose), shard0, compact].sort())
      expect(await keysUnder('', fixtureStore)).toEqual(without(keys, [...[0, 1, 2, 3, 4].map(loose), shard0, compact]))
    })
  },
)

describe('deleteManifest', () => {
  it('a missing manifest is ManifestNotFoundError; an invalid line anywhere deletes nothing', async () => {
    const missing = s3.key('dm/none/manifest.jsonl')
    const error = await rejection(store.deleteManifest(missing))
    expect(error).toBeInstanceOf(ManifestNotFoundError)
    expect((error as ManifestNotFoundError).key).toBe(missing)

    const bad = s3.key('dm/bad/manifest.jsonl')
    const files = [s3.key('dm/bad/a.txt'), s3.key('dm/bad/b.txt')]
    await putAll(files)
    await put(bad, `${files.map((key) => serializeEntry({ kind: 'file', key })).join('\n')}\n{"kind":"file"}\n`)
    const invalid = await rejection(store.deleteManifest(bad))
    expect(invalid).toBeInstanceOf(InvalidManifestError)
    expect((invalid as InvalidManifestError).lineNumber).toBe(3)
    expect(await keysUnder(s3.key('dm/bad/'))).toEqual([...files, bad].sort())
  })

  describe('fences', () => {
    const base = () => s3.key('dm/fence')
    const setUp = async (name: string) => {
      const f = `${base()}/${name}`
      const root = `${f}/inside/manifest.jsonl`
      const part = `${f}/inside/manifests/part-1.jsonl`
      const outsidePart = `${f}/outside/part-2.jsonl`
      const inside = [`${f}/inside/a.txt`, `${f}/inside/b.txt`, `${f}/inside/c.txt`]
      const insideArchive = `${f}/inside/shards/s.tar`
      const outside = [`${f}/outside/x.txt`, `${f}/inside-other/y.txt`, `${f}/outside/z.txt`]
      const outsideArchive = `${f}/outside/shards/s.tar`
      await putAll([...inside, insideArchive, ...outside, outsideArchive])
      await putManifest(part, [
        { kind: 'file', key: inside[2] as string },
        { kind: 'file', key: outside[2] as string },
      ])
      await putManifest(outsidePart, [{ kind: 'file', key: inside[1] as string }])
      await putManifest(root, [
        { kind: 'file', key: inside[0] as string },
        { kind: 'file', key: outside[0] as string },
        { kind: 'shard', archive_key: insideArchive },
        { kind: 'shard', archive_key: outsideArchive },
        { kind: 'manifest_ref', key: part },
        { kind: 'file', key: outside[1] as string },
        { kind: 'manifest_ref', key: outsidePart },
      ])
      return { f, root, part, outsidePart, inside, insideArchive, outside, outsideArchive }
    }

    it('keys outside basePrefix are left alone and listed in outsideFence; keys inside are deleted', async () => {
      const t = await setUp('base')
      const { store: fenced } = freshStore({ basePrefix: `${t.f}/inside` })
      const report = await fenced.deleteManifest(t.root, { referencedManifests: true })
      expect(report.errors).toEqual({})
      expect([...report.outsideFence].sort()).toEqual([...t.outside, t.outsideArchive, t.outsidePart].sort())
      expect([...report.keys.objects].sort()).toEqual(t.inside)
      expect(report.keys.archives).toEqual([t.insideArchive])
      expect([...report.keys.manifests].sort()).toEqual([t.part, t.root].sort())
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([3, 1, 2])
      expect(await keysUnder(`${t.f}/`)).toEqual([...t.outside, t.outsideArchive, t.outsidePart].sort())
    })

    it('the manifest itself outside the fence stays, and is listed', async () => {
      const t = await setUp('root-outside')
      const { store: fenced } = freshStore({ basePrefix: `${t.f}/outside` })
      const report = await fenced.deleteManifest(t.root)
      expect(report.outsideFence).toContain(t.root)
      expect(report.keys.manifests).toEqual([])
      expect(report.keys.objects.sort()).toEqual([t.outside[0], t.outside[2]].sort())
      expect(await fenced.exists(t.root)).toBe(true)
      expect(await fenced.exists(t.outside[1] as string)).toBe(true)
    })

    it('`within` overrides basePrefix', async () => {
      const t = await setUp('within')
      const { store: fenced } = freshStore({ basePrefix: `${t.f}/inside` })
      const report = await fenced.deleteManifest(t.root, { within: `${t.f}/outside`, referencedManifests: true })
      expect([...report.keys.objects].sort()).toEqual([t.outside[0], t.outside[2]].sort())
      expect(report.keys.archives).toEqual([t.outsideArchive])
      expect(report.keys.manifests).toEqual([t.outsidePart])
      expect([...report.outsideFence].sort()).toEqual([...t.inside, t.outside[1], t.insideArchive, t.root, t.part].sort())
      expect(await keysUnder(`${t.f}/`)).toEqual([...t.inside, t.outside[1], t.insideArchive, t.root, t.part].sort())
    })

    it("within: '' is the whole bucket", async () => {
      const t = await setUp('whole')
      const { store: fenced } = freshStore({ basePrefix: `${t.f}/inside` })
      const report = await fenced.deleteManifest(t.root, { within: '', referencedManifests: true })
      expect(report.outsideFence).toEqual([])
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([6, 2, 3])
      expect(await keysUnder(`${t.f}/`)).toEqual([])
    })

    it('dryRun reports the plan and the keys outside, and deletes nothing', async () => {
      const t = await setUp('dry')
      const { store: fenced, counts } = freshStore({ basePrefix: `${t.f}/inside` })
      const before = await keysUnder(`${t.f}/`)
      const report = await fenced.deleteManifest(t.root, { dryRun: true, referencedManifests: true })
      expect(report.dryRun).toBe(true)
      expect([...report.keys.objects].sort()).toEqual(t.inside)
      expect(report.keys.archives).toEqual([t.insideArchive])
      expect([...report.keys.manifests].sort()).toEqual([t.part, t.root].sort())
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([3, 1, 2])
      expect([...report.outsideFence].sort()).toEqual([...t.outside, t.outsideArchive, t.outsidePart].sort())
      expect(counts.DeleteObjectsCommand ?? 0).toBe(0)
      expect(await keysUnder(`${t.f}/`)).toEqual(before)
    })
  })

  describe('partial failures are reported in errors, not thrown', () => {
    const setUp = async (name: string) => {
      const f = s3.key(`dm/partial/${name}`)
      const root = `${f}/manifest.jsonl`
      const files = [`${f}/a.txt`, `${f}/b.txt`, `${f}/c.txt`]
      const archive = `${f}/s.tar`
      await putAll([...files, archive])
      await putManifest(root, [...files.map((key): ManifestEntry => ({ kind: 'file', key })), { kind: 'shard', archive_key: archive }])
      return { f, root, files, archive }
    }

    it('a DeleteObjects request answered 500: its keys are in errors, the rest goes on', async () => {
      const t = await setUp('http-500')
      // The data goes in the first request, the manifest in the second; the first is answered 500.
      const proxy = await failingDeletes((n) => n === 1)
      const { store: faulty } = freshStore({ endpoint: proxy.endpoint, maxAttempts: 1 })
      const report = await faulty.deleteManifest(t.root)
      expect(Object.keys(report.errors).sort()).toEqual([...t.files, t.archive, t.root].sort())
      for (const key of [...t.files, t.archive]) expect(report.errors[key]).toMatch(/500/)
      expect(report.deletedObjectCount).toBe(0)
      expect(report.deletedArchiveCount).toBe(0)
      expect(report.keys.objects).toEqual([])
      // Unlike Python, the manifest is kept when some of its data could not be deleted: it still
      // describes what is left, and the call can be retried.
      expect(report.errors[t.root]).toMatch(/^kept: 4 of the objects/)
      expect(report.deletedManifestCount).toBe(0)
      expect(await keysUnder(`${t.f}/`)).toEqual([...t.files, t.archive, t.root].sort())
    })

    it('keys the server refuses are in errors; the others are deleted and counted', async () => {
      const t = await setUp('per-key')
      const refused = new Set([t.files[1] as string, t.archive])
      const { store: faulty, client } = freshStore()
      refuseKeys(client, refused)
      const report = await faulty.deleteManifest(t.root)
      expect(report.errors).toEqual({
        [t.files[1] as string]: 'AccessDenied: Access Denied',
        [t.archive]: 'AccessDenied: Access Denied',
        [t.root]: 'kept: 2 of the objects it references could not be deleted',
      })
      expect(report.keys.objects).toEqual([t.files[0], t.files[2]])
      expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([2, 0, 0])
      expect(await keysUnder(`${t.f}/`)).toEqual([t.files[1], t.archive, t.root].sort())
    })
  })

  it('entries in memory (an array) work, refs in them resolved; there is no manifest of their own to delete', async () => {
    const f = s3.key('dm/entries')
    const part = `${f}/part.jsonl`
    const files = [`${f}/a.txt`, `${f}/b.txt`, `${f}/c.txt`]
    await putAll(files)
    await putManifest(part, [{ kind: 'file', key: files[2] as string }])
    const entries: ManifestEntry[] = [
      { kind: 'file', key: files[0] as string },
      { kind: 'file', key: files[1] as string },
      { kind: 'manifest_ref', key: part },
      { kind: 'file', key: files[0] as string },
    ]
    const dry = await store.deleteManifest(entries, { dryRun: true, referencedManifests: true })
    expect(dry.keys).toEqual({ objects: files, archives: [], manifests: [part] })

    const report = await store.deleteManifest(entries)
    expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([3, 0, 0])
    expect(await keysUnder(`${f}/`)).toEqual([part])

    // Manifest.fromEntries(...).delete() is the same call; with referencedManifests the ref'd manifest goes.
    await putAll(files)
    const again = await Manifest.fromEntries(store, entries).delete({ referencedManifests: true })
    expect([again.deletedObjectCount, again.deletedArchiveCount, again.deletedManifestCount]).toEqual([3, 0, 1])
    expect(await keysUnder(`${f}/`)).toEqual([])
  })

  it('a compacted manifest of archive members deletes each archive once', async () => {
    const f = s3.key('dm/members')
    const archive = `${f}/shards/s.tar`
    const members = [
      { name: 'one.bin', data: 'one' },
      { name: 'dir/two.bin', data: 'two' },
    ]
    await put(archive, await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archive, members) }, ...members]))
    const loose = `${f}/notes#1.txt`
    await put(loose)
    const root = `${f}/compact.jsonl`
    await store.writeManifest(root, [
      ...members.map((m): ManifestEntry => ({ kind: 'file', key: `${archive}#${m.name}`, member_path: m.name, archive_key: archive })),
      { kind: 'file', key: loose },
    ])
    const report = await store.deleteManifest(root)
    expect(report.keys).toEqual({ objects: [loose], archives: [archive], manifests: [root] })
    expect([report.deletedObjectCount, report.deletedArchiveCount, report.deletedManifestCount]).toEqual([1, 1, 1])
    expect(await keysUnder(`${f}/`)).toEqual([])
  })
})
