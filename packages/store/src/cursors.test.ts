/**
 * Cursors through the store, on a real S3 server: every item of `iterObjects` and
 * `iterManifestEntries` has one, and resuming after any item yields exactly the items after it;
 * a resumed traversal skips the parts and shards before the cursor unread and reads a partly
 * consumed shard from the next member with a ranged GET; a manifest appended to since still
 * resumes (and gives the new items); a rewritten one, a garbage string, a cursor of another
 * manifest or of other options are typed errors.
 */
import { randomBytes } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { CursorMismatchError, type FileEntry, InvalidCursorError, type ManifestEntry, type ShardEntry } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
const via = useS3Proxy(s3)
let store: S3ExchangeStore
let proxied: S3ExchangeStore
let root: string
const data = new Map<string, Buffer>()

interface Item {
  key: string
  cursor: string
}

async function collect(
  items: AsyncIterable<{ entry: ManifestEntry; cursor: string; body?: { bytes(): Promise<Uint8Array> } }>,
): Promise<Item[]> {
  const out: Item[] = []
  for await (const item of items) {
    const key = item.entry.kind === 'shard' ? item.entry.archive_key : item.entry.key
    if (item.body) expect(Buffer.from(await item.body.bytes())).toStrictEqual(data.get(key))
    out.push({ key, cursor: item.cursor })
  }
  return out
}

/** What a call fails with, whether it throws at once (bad options, a cursor that does not fit) or while iterating. */
async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run()
  } catch (error) {
    return error
  }
  throw new Error('expected a failure')
}

async function loose(name: string): Promise<FileEntry> {
  const bytes = randomBytes(300)
  const key = s3.key(`objects/${name}`)
  data.set(key, bytes)
  return store.putObject(key, bytes)
}

async function shard(name: string, compression: 'gzip' | 'zstd' | null, members: number): Promise<ShardEntry> {
  const archiveKey = s3.key(`shards/${name}`)
  const items = Array.from({ length: members }, (_, i) => {
    const source = randomBytes(20_000 + i)
    data.set(`${archiveKey}#m${i}.bin`, source)
    return { source, member_path: `m${i}.bin`, id: `${name}-${i}` }
  })
  return (await store.putShardArchive(archiveKey, items, { compression })).entry
}

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  proxied = new S3ExchangeStore({ client: via.client, bucket: s3.bucket })
  root = s3.key('ds/manifest.jsonl')
  await store.writeManifest(root, [await loose('a'), await loose('b'), await loose('c')], { mode: 'append_parts' })
  await store.writeManifest(root, [await shard('s1.tar', null, 5), await loose('d'), await shard('s2.tar.gz', 'gzip', 4)], {
    mode: 'append_parts',
  })
  await store.writeManifest(root, [await shard('s3.tar.zst', 'zstd', 3), await loose('e')], { mode: 'append_parts' })
})

describe('iterObjects with cursors', () => {
  it('resuming after any item yields exactly the items after it', async () => {
    const all = await collect(store.iterObjects(root))
    expect(all.map((i) => i.key)).toHaveLength(3 + 5 + 1 + 4 + 3 + 1)
    expect(new Set(all.map((i) => i.cursor)).size).toBe(all.length)
    for (let i = 0; i < all.length; i++) {
      const rest = await collect(store.iterObjects(root, { after: (all[i] as Item).cursor }))
      expect(rest.map((r) => r.key)).toStrictEqual(all.slice(i + 1).map((r) => r.key))
    }
  })

  it('skips the parts and shards before the cursor, and reads a partly read shard from the next member with a ranged GET', async () => {
    const all = await collect(store.iterObjects(root))
    const parts = (await collect(store.iterManifestEntries(root, { resolveRefs: false, cursors: true }))).map((i) => i.key)
    const at = all.findIndex((i) => i.key.endsWith('s2.tar.gz#m1.bin'))
    const mark = via.proxy.requests.length
    const rest = await collect(proxied.iterObjects(root, { after: (all[at] as Item).cursor }))
    expect(rest.map((r) => r.key)).toStrictEqual(all.slice(at + 1).map((r) => r.key))
    const gets = via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')
    const path = (url: string) => decodeURIComponent(url.split('?')[0] as string)
    const of = (key: string) => gets.filter((r) => path(r.url).endsWith(`/${key}`))
    expect(of(parts[0] as string)).toHaveLength(0) // the first part: skipped
    expect(of(s3.key('shards/s1.tar'))).toHaveLength(0) // a shard before the cursor: skipped
    const s2 = of(s3.key('shards/s2.tar.gz'))
    expect(s2.length).toBeGreaterThan(0)
    expect(s2.every((r) => r.headers.range !== undefined)).toBe(true) // never read whole
    expect(of(s3.key('shards/s3.tar.zst')).filter((r) => r.headers.range === undefined)).toHaveLength(1)
  })

  it('resumes in a manifest appended to since, and yields what was appended', async () => {
    const key = s3.key('grow/manifest.jsonl')
    await store.writeManifest(key, [await loose('g1'), await shard('g.tar', null, 3)], { mode: 'append_parts' })
    const first = await collect(store.iterObjects(key))
    await store.writeManifest(key, [await loose('g2')], { mode: 'append_parts' })
    const rest = await collect(store.iterObjects(key, { after: (first[1] as Item).cursor }))
    expect(rest.map((r) => r.key)).toStrictEqual([...first.slice(2).map((r) => r.key), s3.key('objects/g2')])
  })

  it('a rewritten manifest with an old cursor is a CursorMismatchError naming it', async () => {
    const key = s3.key('rewrite/manifest.jsonl')
    const entries = [await loose('r1'), await loose('r2'), await loose('r3')]
    await store.writeManifest(key, entries)
    const items = await collect(store.iterObjects(key))
    await store.writeManifest(key, [entries[1] as FileEntry, entries[0] as FileEntry, entries[2] as FileEntry])
    const error = await failure(() => collect(store.iterObjects(key, { after: (items[1] as Item).cursor })))
    expect(error).toBeInstanceOf(CursorMismatchError)
    expect(error).toMatchObject({ key, reason: 'rewritten' })
    // Compacted into a shorter manifest: the line is gone.
    await store.writeManifest(key, [entries[0] as FileEntry])
    const shorter = await failure(() => collect(store.iterObjects(key, { after: (items[2] as Item).cursor })))
    expect(shorter).toMatchObject({ name: 'CursorMismatchError', key, reason: 'rewritten' })
  })

  it('a garbage cursor is an InvalidCursorError; a cursor of another manifest or other options, a CursorMismatchError', async () => {
    for (const garbage of ['', 'not a cursor!', 'eyJ2IjoyfQ', Buffer.from('{"v":1}').toString('base64url'), 'aGVsbG8']) {
      expect(() => store.iterObjects(root, { after: garbage })).toThrow(InvalidCursorError) // before anything is read
    }
    const [first] = await collect(store.iterObjects(root, { limit: 1 }))
    const other = s3.key('rewrite/manifest.jsonl')
    expect(await failure(() => collect(store.iterObjects(other, { after: first?.cursor })))).toMatchObject({
      name: 'CursorMismatchError',
      reason: 'manifest',
    })
    expect(
      await failure(() => collect(store.iterObjects(root, { after: first?.cursor, partition: { index: 0, count: 2 } }))),
    ).toMatchObject({
      name: 'CursorMismatchError',
      reason: 'options',
    })
    const [partitioned] = await collect(store.iterObjects(root, { limit: 1, partition: { index: 1, count: 3 } }))
    // Thrown before anything is read.
    expect(() => store.iterObjects(root, { after: partitioned?.cursor })).toThrow(CursorMismatchError)
    expect(() => store.iterManifestEntries(root, { after: first?.cursor, resolveRefs: false, cursors: true })).toThrow(
      /resumed with resolveRefs=false/,
    )
  })

  it('with a partition, resuming after any item of a share yields the rest of that share', async () => {
    const count = 3
    for (let index = 0; index < count; index++) {
      const share = await collect(store.iterObjects(root, { partition: { index, count } }))
      for (let i = 0; i < share.length; i++) {
        const rest = await collect(store.iterObjects(root, { partition: { index, count }, after: (share[i] as Item).cursor }))
        expect(rest.map((r) => r.key)).toStrictEqual(share.slice(i + 1).map((r) => r.key))
      }
    }
  })

  it('a manifest of entries in memory has cursors too', async () => {
    const entries = [await loose('m1'), await shard('m.tar', null, 2), await loose('m2')]
    const all = await collect(store.iterObjects(entries))
    expect(all.map((i) => i.key)).toStrictEqual([
      s3.key('objects/m1'),
      `${s3.key('shards/m.tar')}#m0.bin`,
      `${s3.key('shards/m.tar')}#m1.bin`,
      s3.key('objects/m2'),
    ])
    const rest = await collect(store.iterObjects(entries, { after: (all[1] as Item).cursor }))
    expect(rest.map((r) => r.key)).toStrictEqual(all.slice(2).map((r) => r.key))
  })
})

describe('iterManifestEntries with cursors', () => {
  it('gives { entry, cursor } and resumes after any entry, refs resolved or not', async () => {
    for (const resolveRefs of [true, false]) {
      const all = await collect(store.iterManifestEntries(root, { cursors: true, resolveRefs }))
      expect(all).toHaveLength(resolveRefs ? 8 : 3)
      for (let i = 0; i < all.length; i++) {
        const rest: string[] = []
        for await (const entry of store.iterManifestEntries(root, { after: (all[i] as Item).cursor, resolveRefs })) {
          rest.push(entry.kind === 'shard' ? entry.archive_key : entry.key)
        }
        expect(rest).toStrictEqual(all.slice(i + 1).map((r) => r.key))
      }
    }
  })

  it('an entry cursor resumes iterObjects after that whole shard', async () => {
    const entries = await collect(store.iterManifestEntries(root, { cursors: true }))
    const at = entries.findIndex((e) => e.key.endsWith('s1.tar'))
    const rest = await collect(store.iterObjects(root, { after: (entries[at] as Item).cursor }))
    expect(rest[0]?.key).toBe(s3.key('objects/d'))
  })

  it('a root without refs is read from the cursor on with one ranged GET', async () => {
    const key = s3.key('flat/manifest.jsonl')
    const entries = [await loose('f1'), await loose('f2'), await loose('f3')]
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: `${entries.map((e) => JSON.stringify(e)).join('\n')}\n` }),
    )
    const all = await collect(store.iterManifestEntries(key, { cursors: true }))
    const mark = via.proxy.requests.length
    const rest = await collect(proxied.iterManifestEntries(key, { cursors: true, after: (all[0] as Item).cursor }))
    expect(rest.map((r) => r.key)).toStrictEqual(all.slice(1).map((r) => r.key))
    const gets = via.proxy.requests.slice(mark).filter((r) => r.method === 'GET')
    expect(gets).toHaveLength(1)
    expect(gets[0]?.headers.range).toMatch(/^bytes=\d+-$/)
    expect(gets[0]?.headers['if-match']).toBeDefined()
  })
})
