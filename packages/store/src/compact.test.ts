/**
 * Compacting against a real (local) S3: the Python fixture's mixed root compacts to the exact bytes
 * Python wrote (mixed/compact.jsonl) with Python's report; refs dropped and counted when not
 * resolved; every fixture root compacts to what Python lists; failures publish nothing; a
 * 1,000,000-entry manifest of 20 parts compacts into one, streamed. Also the Manifest wrappers:
 * compact, save, and Python's static helpers.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { countRequests, rejection, uploadDirectory } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CompactReport } from './index.js'
import {
  type CommitResult,
  ConfigurationError,
  type FileEntry,
  InvalidManifestError,
  type ManifestEntry,
  ManifestNotFoundError,
  ObjectNotFoundError,
  serializeEntry,
} from './index.js'
import { Manifest } from './manifest.js'
import { S3ExchangeStore } from './store.js'

const fixture = join(import.meta.dirname, '../../../test/fixtures/python-s3exchange-0.1.1')
const expected: { roots: Record<string, { entries_resolved: ManifestEntry[]; entries_raw: ManifestEntry[]; files: ManifestEntry[] }> } =
  JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8'))
const mixed = 'exchange/shared/mixed/manifest.jsonl'

const s3 = useTestS3()
let store: S3ExchangeStore
const clients: S3Client[] = []

beforeAll(async () => {
  await uploadDirectory(s3.client, s3.bucket, join(fixture, 'bucket'))
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

async function getObject(key: string): Promise<{ bytes: Buffer; contentType: string | undefined }> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  const bytes = Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
  return { bytes, contentType: response.ContentType }
}

async function put(key: string, body: string): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

const lines = (entries: ManifestEntry[]) => entries.map((entry) => `${serializeEntry(entry)}\n`).join('')

describe('compactManifest on the fixture (Python s3exchange 0.1.1)', () => {
  it("the mixed root with expandShards gives Python's compact.jsonl byte for byte, and Python's report", async () => {
    const dst = s3.key('compact/mixed-expanded.jsonl')
    const report = await store.compactManifest(mixed, dst, { expandShards: true })
    expect(report).toStrictEqual({ totalEntries: 12, removedEntries: 0, resolvedRefs: 0, expandedShards: 5 } satisfies CompactReport)
    const written = await getObject(dst)
    const python = await readFile(join(fixture, 'bucket/exchange/shared/mixed/compact.jsonl'))
    expect(written.bytes.toString('utf8')).toBe(python.toString('utf8'))
    expect(Buffer.compare(written.bytes, python)).toBe(0)
    expect(written.contentType).toBe('application/x-ndjson')
  })

  it('resolveRefs: false drops the refs and counts them (mixed: 4 entries read, 2 refs)', async () => {
    const dst = s3.key('compact/mixed-refs-dropped.jsonl')
    const report = await store.compactManifest(mixed, dst, { resolveRefs: false })
    expect(report).toStrictEqual({ totalEntries: 4, removedEntries: 0, resolvedRefs: 2, expandedShards: 0 })
    const raw = (await readFile(join(fixture, 'bucket', mixed), 'utf8')).split('\n')
    // Lines 2 and 3 of the root: the shard and the file; the refs (lines 1 and 4) are gone.
    expect((await getObject(dst)).bytes.toString('utf8')).toBe(`${raw[1]}\n${raw[2]}\n`)

    const both = await store.compactManifest(mixed, s3.key('compact/mixed-refs-dropped-expanded.jsonl'), {
      resolveRefs: false,
      expandShards: true,
    })
    expect(both).toStrictEqual({ totalEntries: 4, removedEntries: 0, resolvedRefs: 2, expandedShards: 5 })
  })

  it('by default refs are inlined and shards kept: the entries Python resolves, in order', async () => {
    const dst = s3.key('compact/mixed-default.jsonl')
    const report = await store.compactManifest(mixed, dst)
    expect(report).toStrictEqual({ totalEntries: 12, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 })
    expect(await Array.fromAsync(store.iterManifestEntries(dst))).toStrictEqual(expected.roots[mixed]?.entries_resolved)
    // Byte for byte, the lines Python wrote, in the order refs resolve to.
    const raw = async (key: string) => (await readFile(join(fixture, 'bucket', key), 'utf8')).split('\n').filter((line) => line !== '')
    const root = await raw(mixed)
    const want = [
      ...(await raw('exchange/shared/loose/manifest.jsonl')),
      root[1],
      root[2],
      ...(await raw('exchange/shared/parts/manifests/part-20261123-234044-bca8efaa.jsonl')),
      ...(await raw('exchange/shared/parts/manifests/part-20261123-234044-3afdeab9.jsonl')),
    ]
    expect((await getObject(dst)).bytes.toString('utf8')).toBe(want.map((line) => `${line}\n`).join(''))
  })

  describe.each(Object.keys(expected.roots))('root %s', (root) => {
    const want = expected.roots[root] as (typeof expected.roots)[string]

    it('with expandShards, compacts to the files Python lists, counted as Python counts', async () => {
      const dst = s3.key(`compact/each/${root}`)
      const report = await store.compactManifest(root, dst, { expandShards: true })
      const shards = want.entries_resolved.filter((entry) => entry.kind === 'shard').length
      expect(report.totalEntries).toBe(want.entries_resolved.length)
      expect(report.expandedShards).toBe(want.files.length - (want.entries_resolved.length - shards))
      expect(report.resolvedRefs).toBe(0)
      expect(await Array.fromAsync(store.iterManifestEntries(dst, { resolveRefs: false }))).toStrictEqual(want.files)
    })
  })
})

describe('compactManifest', () => {
  it('an empty manifest compacts to an empty one ("\\n")', async () => {
    const src = s3.key('compact/empty/src.jsonl')
    await put(src, '\n\n')
    const report = await store.compactManifest(src, s3.key('compact/empty/dst.jsonl'), { expandShards: true })
    expect(report).toStrictEqual({ totalEntries: 0, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 })
    expect((await getObject(s3.key('compact/empty/dst.jsonl'))).bytes.toString('utf8')).toBe('\n')
  })

  it('a missing source, a bad line or a missing ref: the error is thrown and the destination is left as it was', async () => {
    const dst = s3.key('compact/fail/dst.jsonl')
    await put(dst, 'previous contents\n')
    const missing = s3.key('compact/fail/none.jsonl')
    const notFound = await rejection(store.compactManifest(missing, dst))
    expect(notFound).toBeInstanceOf(ManifestNotFoundError)
    expect((notFound as ManifestNotFoundError).key).toBe(missing)

    const bad = s3.key('compact/fail/bad.jsonl')
    await put(bad, '{"kind":"file","key":"a"}\n{"kind":"file","key":"b"}\n{"kind":"nope"}\n')
    const invalid = await rejection(store.compactManifest(bad, dst))
    expect(invalid).toBeInstanceOf(InvalidManifestError)
    expect((invalid as InvalidManifestError).lineNumber).toBe(3)

    const dangling = s3.key('compact/fail/dangling.jsonl')
    await put(
      dangling,
      lines([
        { kind: 'file', key: 'a' },
        { kind: 'manifest_ref', key: missing },
      ]),
    )
    expect(await rejection(store.compactManifest(dangling, dst))).toBeInstanceOf(ManifestNotFoundError)

    const noArchive = s3.key('compact/fail/no-archive.jsonl')
    await put(noArchive, lines([{ kind: 'shard', archive_key: s3.key('compact/fail/none.tar') }]))
    const shardError = await rejection(store.compactManifest(noArchive, dst, { expandShards: true }))
    expect((shardError as Error).cause).toBeInstanceOf(ObjectNotFoundError)

    expect((await getObject(dst)).bytes.toString('utf8')).toBe('previous contents\n')
  })

  it('a manifest of entries in memory, and Manifest.compact, compact the same way', async () => {
    const entries: ManifestEntry[] = [
      { kind: 'file', key: 'exchange/shared/writer/extra.txt', id: 'extra' },
      { kind: 'manifest_ref', key: 'exchange/shared/parts/manifest.jsonl' },
    ]
    const fromArray = await store.compactManifest(entries, s3.key('compact/mem/a.jsonl'))
    const viaManifest = await Manifest.fromEntries(store, entries).compact(s3.key('compact/mem/b.jsonl'))
    expect(fromArray).toStrictEqual({ totalEntries: 6, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 })
    expect(viaManifest).toStrictEqual(fromArray)
    const want = [entries[0], ...(expected.roots['exchange/shared/parts/manifest.jsonl']?.entries_resolved ?? [])]
    expect(await Array.fromAsync(store.iterManifestEntries(s3.key('compact/mem/a.jsonl')))).toStrictEqual(want)
    expect((await getObject(s3.key('compact/mem/b.jsonl'))).bytes).toEqual((await getObject(s3.key('compact/mem/a.jsonl'))).bytes)

    const byKey = await store.getManifest(mixed).compact(s3.key('compact/mem/c.jsonl'), { expandShards: true })
    expect(byKey).toStrictEqual({ totalEntries: 12, removedEntries: 0, resolvedRefs: 0, expandedShards: 5 })
    expect((await getObject(s3.key('compact/mem/c.jsonl'))).bytes).toEqual(
      await readFile(join(fixture, 'bucket/exchange/shared/mixed/compact.jsonl')),
    )
  })

  it('a manifest of 1,000,000 entries in 20 parts compacts into one, in order', async () => {
    const total = 1_000_000
    const keyOf = (i: number) => `b/${i}`
    function* entries(): Generator<FileEntry> {
      for (let i = 0; i < total; i++) yield { kind: 'file', key: keyOf(i) }
    }
    const root = s3.key('compact/big/manifest.jsonl')
    const written = (await store.writeManifest(root, entries(), { mode: 'append_parts', partMaxEntries: 50_000 })) as CommitResult
    expect(written.parts).toHaveLength(20)
    expect(written.entries).toBe(total)

    const client = s3.s3.createClient()
    clients.push(client)
    const counts = countRequests(client)
    const counted = new S3ExchangeStore({ client, bucket: s3.bucket })
    const dst = s3.key('compact/big/compact.jsonl')
    const report = await counted.compactManifest(root, dst)
    expect(report).toStrictEqual({ totalEntries: total, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 })
    // The root and its 20 parts, each read once; the result went up in parts (it is too big for one PUT here).
    expect(counts.GetObjectCommand).toBe(21)
    expect(counts.CompleteMultipartUploadCommand).toBe(1)

    let count = 0
    for await (const entry of store.iterManifestEntries(dst, { resolveRefs: false })) {
      if (entry.kind !== 'file' || entry.key !== keyOf(count)) throw new Error(`entry ${count} is ${JSON.stringify(entry)}`)
      count++
    }
    expect(count).toBe(total)
  })
})

describe('Manifest wrappers', () => {
  it('save writes the entries to its key (overwrite), or appends a part (append_parts)', async () => {
    const key = s3.key('wrappers/save/manifest.jsonl')
    const manifest = store.getManifest(key)
    const first: ManifestEntry[] = [
      { kind: 'file', key: 'a/ü.wav', id: 'ü', meta: { sr: 16000 } },
      { kind: 'shard', archive_key: 'a/s.tar', compression: null },
    ]
    await manifest.save(first)
    expect((await getObject(key)).bytes.toString('utf8')).toBe(
      '{"kind":"file","key":"a/\\u00fc.wav","id":"\\u00fc","meta":{"sr":16000}}\n{"kind":"shard","archive_key":"a/s.tar","compression":null}\n',
    )
    expect((await getObject(key)).contentType).toBe('application/x-ndjson')

    const second: ManifestEntry[] = [{ kind: 'file', key: 'a/c.wav' }]
    const result = (await manifest.save(second, { mode: 'append_parts' })) as CommitResult
    expect(result.parts).toHaveLength(1)
    expect(result.parts[0]).toMatch(/\/wrappers\/save\/manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
    expect(await Array.fromAsync(manifest.iterEntries())).toStrictEqual([...first, ...second])

    await manifest.save([{ kind: 'file', key: 'only.wav' }], { mode: 'overwrite' })
    expect(await Array.fromAsync(manifest.iterEntries())).toStrictEqual([{ kind: 'file', key: 'only.wav' }])
  })

  it('save of a manifest without a key is a ConfigurationError', async () => {
    await expect(Manifest.fromEntries(store, [{ kind: 'file', key: 'a' }]).save()).rejects.toBeInstanceOf(ConfigurationError)
  })

  it('parseLine parses one line, naming the line and the manifest in errors', () => {
    expect(Manifest.parseLine('{"kind":"file","key":"a/\\u00fc.wav","x":1}')).toStrictEqual({ kind: 'file', key: 'a/ü.wav', x: 1 })
    expect(Manifest.parseLine(' {"kind":"manifest_ref","key":"m.jsonl"}\r')).toStrictEqual({ kind: 'manifest_ref', key: 'm.jsonl' })
    for (const bad of ['{"kind":"file"}', '{"kind":"what","key":"a"}', 'not json', '[1]']) {
      const error = (() => {
        try {
          Manifest.parseLine(bad, 7, 'ds/manifest.jsonl')
        } catch (e) {
          return e
        }
        return undefined
      })()
      expect(error).toBeInstanceOf(InvalidManifestError)
      expect((error as InvalidManifestError).lineNumber).toBe(7)
      expect((error as InvalidManifestError).key).toBe('ds/manifest.jsonl')
    }
  })

  it("serializeEntry writes Python's json.dumps(separators=(',', ':'))", () => {
    expect(Manifest.serializeEntry({ kind: 'file', key: 'k/🎧.wav', id: null, meta: { t: 'a"b\\c\n', n: 1 } })).toBe(
      '{"kind":"file","key":"k/\\ud83c\\udfa7.wav","id":null,"meta":{"t":"a\\"b\\\\c\\n","n":1}}',
    )
  })

  it('generatePartKey names a part beside the root', () => {
    expect(Manifest.generatePartKey('ds/x/manifest.jsonl')).toMatch(/^ds\/x\/manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
    expect(Manifest.generatePartKey('manifest.jsonl')).toMatch(/^manifests\/part-\d{8}-\d{6}-[0-9a-f]{8}\.jsonl$/)
    expect(Manifest.generatePartKey('a/m.jsonl')).not.toBe(Manifest.generatePartKey('a/m.jsonl'))
  })

  it('writeToS3 and readFromS3 write and read one manifest object, refs not followed', async () => {
    const key = s3.key('wrappers/static/manifest.jsonl')
    const entries: ManifestEntry[] = [
      { kind: 'manifest_ref', key: 'exchange/shared/parts/manifest.jsonl' },
      { kind: 'file', key: 'x', size_bytes: 3 },
    ]
    await Manifest.writeToS3(store, key, entries)
    expect((await getObject(key)).bytes.toString('utf8')).toBe(lines(entries))
    expect(await Array.fromAsync(Manifest.readFromS3(store, key))).toStrictEqual(entries)
    const missing = s3.key('wrappers/static/none.jsonl')
    expect(await rejection(Array.fromAsync(Manifest.readFromS3(store, missing)))).toBeInstanceOf(ManifestNotFoundError)
    await Manifest.writeToS3(store, key, [])
    expect((await getObject(key)).bytes.toString('utf8')).toBe('\n')
  })
})
