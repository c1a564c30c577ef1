/**
 * Random access through the store: `getObject('archive#member')` and `Shard.getMember` read one
 * member with one ranged GET once the archive's index is in the store's cache (bounded by
 * `archiveIndexCacheSize`); an archive rewritten under the same key is noticed (412) and read
 * again; `iterObjectsFromKeys` reads a few members of a large shard by range after the scan that
 * found its index, streams the archive for many, and streams archives without offsets; and
 * `iterObjects` with its default shard prefetch gives what one archive at a time gives. Requests
 * are watched on a loopback proxy (`range`, `if-match`) and through SDK middleware (statuses).
 */
import { createHash, randomBytes } from 'node:crypto'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor, type ProxiedRequest, type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EntryWithBody, type FileEntry, type ManifestEntry, readInternalManifest, type ShardEntry } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
const KiB = 1024
const HEAD_RANGE = 'bytes=0-65535'
let proxy: S3Proxy
const clients: S3Client[] = []
/** Statuses of the GetObject calls that failed, in order. */
const failedGets: number[] = []

function proxiedClient(): S3Client {
  const client = s3.s3.createClient({ endpoint: proxy.endpoint })
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args)
      } catch (error) {
        if (context.commandName === 'GetObjectCommand') {
          failedGets.push((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1)
        }
        throw error
      }
    },
    { step: 'initialize', name: 'record-failed-gets' },
  )
  clients.push(client)
  return client
}

function newStore(options: { archiveIndexCacheSize?: number } = {}): S3ExchangeStore {
  return new S3ExchangeStore({ client: proxiedClient(), bucket: s3.bucket, ...options })
}

beforeAll(async () => {
  proxy = await startS3Proxy({ target: s3.s3.endpoint })
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  await proxy?.stop()
})

interface Spec {
  path: string
  data: Buffer
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** GETs the proxy saw since `mark`. */
function getsSince(mark: number): ProxiedRequest[] {
  return proxy.requests.slice(mark).filter((request) => request.method === 'GET')
}

/** Reads every body in turn: entries and the SHA-256 of their bytes. */
async function read(items: AsyncIterable<EntryWithBody<FileEntry>>): Promise<{ entry: FileEntry; sha: string }[]> {
  const out: { entry: FileEntry; sha: string }[] = []
  for await (const { entry, body } of items) out.push({ entry, sha: sha(await body.bytes()) })
  return out
}

function members(prefix: string, count: number, size: (i: number) => number): Spec[] {
  return Array.from({ length: count }, (_, i) => ({
    path: `${prefix}/${String(i).padStart(3, '0')}${i === 2 ? '-ünï 🎧' : ''}.bin`,
    data: randomBytes(size(i)),
  }))
}

describe.each([
  { name: 'plain tar', compression: null, ext: 'tar' },
  { name: 'seekable tar.gz', compression: 'gzip', ext: 'tar.gz' },
  { name: 'seekable tar.zst', compression: 'zstd', ext: 'tar.zst' },
] as const)('getObject and Shard.getMember, $name', ({ compression, ext }) => {
  const list = [
    ...members('m', 6, (i) => [5, 511, 512, 513, 0, 40 * KiB][i] as number),
    { path: `${'d'.repeat(110)}/x.bin`, data: randomBytes(900) },
  ]
  let key: string
  let etag: string | null | undefined

  beforeAll(async () => {
    key = s3.key(`get/shard.${ext}`)
    const shard = await newStore().putShardArchive(
      key,
      list.map((spec) => ({ source: spec.data, member_path: spec.path })),
      { compression },
    )
    etag = shard.entry.meta?.etag as string | null | undefined
  })

  it('N getObject calls on N members of one archive = 1 head GET + N ranged GETs', async () => {
    const store = newStore()
    const mark = proxy.requests.length
    for (const spec of list) {
      const body = await store.getObject(`${key}#${spec.path}`)
      expect(Buffer.from(await body.bytes()).equals(spec.data), spec.path).toBe(true)
    }
    const gets = getsSince(mark)
    expect(gets).toHaveLength(1 + list.length)
    expect(gets[0]?.headers.range).toBe(HEAD_RANGE)
    for (const get of gets.slice(1)) {
      expect(get.headers.range).toMatch(/^bytes=\d+-\d+$/)
      expect(get.headers.range).not.toBe(HEAD_RANGE)
      expect(get.headers['if-match']).toBe(`"${etag}"`)
    }
    // Shard.getMember shares the store's cache: one GET each.
    const shard = store.getShard(key)
    for (const spec of list.slice(0, 3)) {
      const before = proxy.requests.length
      expect(Buffer.from(await (await shard.getMember(spec.path)).bytes()).equals(spec.data)).toBe(true)
      expect(getsSince(before)).toHaveLength(1)
    }
  })

  it('Shard.getMember first: it fills the cache getObject then uses', async () => {
    const store = newStore()
    const mark = proxy.requests.length
    await (await store.getShard(key).getMember(list[1]?.path as string)).bytes()
    expect(getsSince(mark)).toHaveLength(2)
    const again = proxy.requests.length
    expect(Buffer.from(await (await store.getObject(`${key}#${list[3]?.path}`)).bytes()).equals(list[3]?.data as Buffer)).toBe(true)
    expect(getsSince(again)).toHaveLength(1)
  })

  it('archiveIndexCacheSize 0: every read does head + member; 1: two archives in turn evict each other', async () => {
    const none = newStore({ archiveIndexCacheSize: 0 })
    expect(none.archiveIndexes).toBeUndefined()
    let mark = proxy.requests.length
    for (const spec of list.slice(0, 3)) await (await none.getObject(`${key}#${spec.path}`)).bytes()
    expect(getsSince(mark)).toHaveLength(6)

    const other = s3.key(`get/other.${ext}`)
    await newStore().putShardArchive(other, [{ source: Buffer.from('other'), member_path: 'o.txt' }], { compression })
    const one = newStore({ archiveIndexCacheSize: 1 })
    mark = proxy.requests.length
    for (let i = 0; i < 2; i++) {
      expect(await (await one.getObject(`${key}#${list[0]?.path}`)).text()).toBe(list[0]?.data.toString())
      expect(await (await one.getObject(`${other}#o.txt`)).text()).toBe('other')
    }
    // Each read found the other archive's index in the one slot: head + member every time (the
    // small other archive is served from its head read: 1 GET).
    expect(getsSince(mark).filter((get) => get.headers.range === HEAD_RANGE)).toHaveLength(4)
    mark = proxy.requests.length
    await (await one.getObject(`${other}#o.txt`)).bytes()
    expect(getsSince(mark)).toHaveLength(1)
  })
})

describe('an archive rewritten under the same key after its index was cached', () => {
  it.each([
    { name: 'plain tar', compression: null, ext: 'tar' },
    { name: 'seekable tar.gz', compression: 'gzip', ext: 'tar.gz' },
  ] as const)('$name: the next getObject sees 412, indexes the archive again and returns the new bytes', async ({ compression, ext }) => {
    const key = s3.key(`replaced/shard.${ext}`)
    const store = newStore()
    const v1 = members('m', 5, (i) => 300 + i * 200)
    const v2 = v1.map((spec) => ({ path: spec.path, data: randomBytes(spec.data.byteLength) }))
    const write = (list: Spec[]) =>
      newStore().putShardArchive(
        key,
        list.map((spec) => ({ source: spec.data, member_path: spec.path })),
        { compression },
      )
    const first = await write(v1)
    expect(Buffer.from(await (await store.getObject(`${key}#${v1[0]?.path}`)).bytes()).equals(v1[0]?.data as Buffer)).toBe(true)
    expect(store.archiveIndexes?.get(key)?.etag).toBe(first.entry.meta?.etag)

    const second = await write(v2)
    expect(second.entry.meta?.etag).not.toBe(first.entry.meta?.etag)
    const mark = proxy.requests.length
    const failedBefore = failedGets.length
    const body = await store.getObject(`${key}#${v1[3]?.path}`)
    expect(Buffer.from(await body.bytes()).equals(v2[3]?.data as Buffer)).toBe(true)
    const gets = getsSince(mark)
    // The ranged GET pinned to the first version, refused; then the new head, and a ranged GET pinned to the new version.
    expect(gets.map((get) => [get.headers['if-match'], get.headers.range])).toEqual([
      [`"${first.entry.meta?.etag}"`, expect.stringMatching(/^bytes=\d+-\d+$/)],
      [undefined, HEAD_RANGE],
      [`"${second.entry.meta?.etag}"`, expect.stringMatching(/^bytes=\d+-\d+$/)],
    ])
    expect(failedGets.slice(failedBefore)).toEqual([412])
    expect(store.archiveIndexes?.get(key)?.etag).toBe(second.entry.meta?.etag)

    // The next read uses the new index: one ranged GET.
    const next = proxy.requests.length
    expect(Buffer.from(await (await store.getObject(`${key}#${v1[1]?.path}`)).bytes()).equals(v2[1]?.data as Buffer)).toBe(true)
    expect(getsSince(next)).toHaveLength(1)
  })
})

describe('iterObjectsFromKeys', () => {
  // 40 members, 4 MiB: a few tiny ones (so that a handful of members can be a small share of the bytes).
  const list = members('big', 40, (i) => (i % 10 === 9 ? 200 : 100 * KiB + i))
  const archives: Record<string, { key: string; shard: ShardEntry; listed: FileEntry[] }> = {}

  beforeAll(async () => {
    for (const compression of [null, 'gzip'] as const) {
      const key = s3.key(`keys/large.${compression ? 'tar.gz' : 'tar'}`)
      const shard = await newStore().putShardArchive(
        key,
        list.map((spec) => ({ source: spec.data, member_path: spec.path })),
        { compression },
      )
      const listed = await readInternalManifest({ client: s3.client, bucket: s3.bucket }, shard.entry)
      archives[compression ?? 'plain'] = { key, shard: shard.entry, listed }
    }
  })

  /** What iterObjectsFromKeys yields for these members of an archive: the listed entry plus where it is. */
  function expected(name: string, picked: number[]) {
    const { key, listed } = archives[name] as { key: string; listed: FileEntry[] }
    return [...picked]
      .sort((a, b) => a - b)
      .map((i) => {
        const spec = list[i] as Spec
        const entry = listed[i] as FileEntry
        return {
          entry: { ...entry, archive_key: key, member_path: spec.path, key: `${key}#${spec.path}` },
          sha: sha(spec.data),
        }
      })
  }

  for (const name of ['plain', 'gzip']) {
    it(`${name}: 3 members = the scan that found the index (stopped there) + 3 ranged GETs`, async () => {
      const { key } = archives[name] as { key: string }
      const picked = [30, 5, 12]
      const store = newStore()
      const mark = proxy.requests.length
      const out = await read(store.iterObjectsFromKeys(picked.map((i) => `${key}#${list[i]?.path}`)))
      // In archive order, as when the archive is streamed.
      expect(out).toEqual(expected(name, picked))
      const gets = getsSince(mark)
      expect(gets).toHaveLength(4)
      expect(gets[0]?.headers.range).toBeUndefined()
      for (const get of gets.slice(1)) {
        expect(get.headers.range).toMatch(/^bytes=\d+-\d+$/)
        expect(get.headers['if-match']).toBe(`"${archives[name]?.shard.meta?.etag}"`)
      }
      // The index is now cached: the same keys again cost the 3 ranged GETs only.
      const again = proxy.requests.length
      expect(await read(store.iterObjectsFromKeys(picked.map((i) => `${key}#${list[i]?.path}`)))).toEqual(expected(name, picked))
      expect(getsSince(again)).toHaveLength(3)
    })

    it(`${name}: every member = one streaming GET`, async () => {
      const { key } = archives[name] as { key: string }
      const picked = [...list.keys()].reverse()
      const mark = proxy.requests.length
      const out = await read(newStore().iterObjectsFromKeys(picked.map((i) => `${key}#${list[i]?.path}`)))
      expect(out).toEqual(expected(name, picked))
      const gets = getsSince(mark)
      expect(gets).toHaveLength(1)
      expect(gets[0]?.headers.range).toBeUndefined()
    })

    it(`${name}: many members that are a small share of the bytes are read by range; many large ones stream`, async () => {
      const { key } = archives[name] as { key: string }
      // The four tiny members and six more: 10 members, about 15% of the archive.
      const tiny = [9, 19, 29, 39, 0, 1, 3, 4, 6, 7]
      let mark = proxy.requests.length
      expect(await read(newStore().iterObjectsFromKeys(tiny.map((i) => `${key}#${list[i]?.path}`)))).toEqual(expected(name, tiny))
      expect(getsSince(mark)).toHaveLength(1 + tiny.length)
      // 12 members of 100 KiB: 30% of the archive, more than 8: one stream.
      const large = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
      mark = proxy.requests.length
      expect(await read(newStore().iterObjectsFromKeys(large.map((i) => `${key}#${list[i]?.path}`)))).toEqual(expected(name, large))
      expect(getsSince(mark)).toHaveLength(1)
    })

    it(`${name}: with archiveIndexCacheSize 0, 3 members still cost 1 + 3 GETs`, async () => {
      const { key } = archives[name] as { key: string }
      const picked = [7, 21, 33]
      const mark = proxy.requests.length
      const out = await read(newStore({ archiveIndexCacheSize: 0 }).iterObjectsFromKeys(picked.map((i) => `${key}#${list[i]?.path}`)))
      expect(out).toEqual(expected(name, picked))
      expect(getsSince(mark)).toHaveLength(4)
    })
  }

  it('members of an archive without offsets (Python-style): one GET, entries as Python builds them', async () => {
    const key = s3.key('keys/python.tar.gz')
    const specs = [
      { name: 'a.wav', data: randomBytes(100 * KiB), id: 'a' },
      { name: 'b/ünï 🎧.txt', data: 'bee' },
      { name: 'c.bin', data: randomBytes(70 * KiB) },
    ]
    await s3.client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: key,
        Body: await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(key, specs) }, ...specs], { gzip: true }),
      }),
    )
    const listed = internalManifestFor(key, specs)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as FileEntry)
    const mark = proxy.requests.length
    const out = await read(newStore().iterObjectsFromKeys([`${key}#c.bin`, `${key}#a.wav`, `${key}#b/ünï 🎧.txt`]))
    expect(getsSince(mark)).toHaveLength(1)
    expect(out).toEqual(
      [0, 1, 2].map((i) => ({
        entry: { ...listed[i], archive_key: key, member_path: specs[i]?.name, key: `${key}#${specs[i]?.name}` },
        sha: sha(Buffer.from(specs[i]?.data as Buffer | string)),
      })),
    )
  })

  it('loose keys first, then archives; a missing member still throws after the others (ranged or not)', async () => {
    const { key } = archives.plain as { key: string }
    const loose = s3.key('keys/loose.txt')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: loose, Body: 'loose' }))
    const out: string[] = []
    let failure: unknown
    try {
      for await (const { entry, body } of newStore().iterObjectsFromKeys([`${key}#${list[3]?.path}`, loose, `${key}#nope.bin`])) {
        await body.bytes()
        out.push(entry.key)
      }
    } catch (error) {
      failure = error
    }
    expect(out).toEqual([loose, `${key}#${list[3]?.path}`])
    expect((failure as { name?: string }).name).toBe('ObjectNotFoundError')
    // With onMissing: 'skip', the rest comes.
    const skipped = await Array.fromAsync(
      newStore().iterObjectsFromKeys([`${key}#${list[3]?.path}`, `${key}#nope.bin`], { onMissing: 'skip' }),
    )
    expect(skipped.map((item) => item.entry.key)).toEqual([`${key}#${list[3]?.path}`])
    for (const item of skipped) item.body.destroy()
  })
})

describe('iterObjects with the default shard prefetch', () => {
  it('gives exactly what one archive at a time gives', async () => {
    const store = newStore()
    const entries: ManifestEntry[] = []
    for (let i = 0; i < 6; i++) {
      const shard = await store.putShardArchive(
        s3.key(`iter/shard-${i}.tar${i % 2 ? '' : '.gz'}`),
        members(`s${i}`, 3 + i, (j) => (j === 1 ? 300 * KiB : 700 + i * 13 + j)).map((spec) => ({
          source: spec.data,
          member_path: spec.path,
        })),
        { compression: i % 2 ? null : 'gzip' },
      )
      entries.push(shard.entry)
      entries.push(await store.putObject(s3.key(`iter/loose-${i}.txt`), Buffer.from(`loose ${i}`)))
    }
    const manifestKey = s3.key('iter/manifest.jsonl')
    await store.writeManifest(manifestKey, entries)
    const oneOut: { entry: ManifestEntry; sha: string }[] = []
    for await (const { entry, body } of store.iterObjects(manifestKey, { shardConcurrency: 1 }))
      oneOut.push({ entry, sha: sha(await body.bytes()) })
    const mark = proxy.requests.length
    const byDefault: { entry: ManifestEntry; sha: string }[] = []
    for await (const { entry, body } of store.iterObjects(manifestKey)) byDefault.push({ entry, sha: sha(await body.bytes()) })
    expect(byDefault).toEqual(oneOut)
    expect(byDefault).toHaveLength(6 + (3 + 4 + 5 + 6 + 7 + 8))
    // One GET per archive, per loose object, and the manifest.
    expect(getsSince(mark)).toHaveLength(6 + 6 + 1)
  })
})
