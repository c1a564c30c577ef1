/**
 * `onProgress` against a real S3: the figures each long call reports add up to the bytes and
 * objects it actually moved, only grow, and carry totals only where they are known; a callback
 * that throws fails the call with its error and leaves nothing behind (no object, no open upload).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { S3Client } from '@aws-sdk/client-s3'
import { pendingMultipartUploads, trackMultipartUploads } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FileEntry, type ManifestEntry, type Progress, putObject, putObjects, type ShardEntry, shardInto } from './index.js'
import { S3ExchangeStore } from './store.js'

const MiB = 1024 * 1024
const s3 = useTestS3()
let store: S3ExchangeStore
let dir: string
const clients: S3Client[] = []

beforeAll(async () => {
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
  dir = await mkdtemp(join(tmpdir(), 's3x-progress-'))
})

afterAll(async () => {
  for (const client of clients) client.destroy()
  await rm(dir, { recursive: true, force: true })
})

/** A callback that records every report, and the reports. */
function recorder(): { onProgress: (progress: Progress) => void; reports: Progress[] } {
  const reports: Progress[] = []
  return { onProgress: (progress) => reports.push(progress), reports }
}

/** Loaded figures never go down. */
function expectMonotonic(reports: Progress[]): void {
  for (let i = 1; i < reports.length; i++) {
    expect(reports[i]?.loadedBytes).toBeGreaterThanOrEqual(reports[i - 1]?.loadedBytes ?? 0)
    expect(reports[i]?.loadedObjects).toBeGreaterThanOrEqual(reports[i - 1]?.loadedObjects ?? 0)
  }
}

const last = (reports: Progress[]) => reports[reports.length - 1]

/** A manifest of 3 loose objects and a shard of 4 members; its objects and their total size. */
async function dataset(name: string): Promise<{ manifest: string; sizes: Map<string, number>; total: number }> {
  const sizes = new Map<string, number>()
  const entries: ManifestEntry[] = []
  for (let i = 0; i < 3; i++) {
    const entry = await store.putObject(s3.key(`${name}/loose-${i}.bin`), randomBytes(1000 + i * 777))
    sizes.set(entry.key, entry.size_bytes as number)
    entries.push(entry)
  }
  const items = Array.from({ length: 4 }, (_, i) => ({ source: randomBytes(500 + i * 300), member_path: `m${i}.bin` }))
  const shard = await store.putShardArchive(s3.key(`${name}/shard.tar.gz`), items)
  entries.push(shard.entry)
  const manifest = s3.key(`${name}/manifest.jsonl`)
  await store.writeManifest(manifest, entries)
  for await (const file of store.listManifestFiles(manifest)) sizes.set(file.key, file.size_bytes as number)
  return { manifest, sizes, total: [...sizes.values()].reduce((a, b) => a + b, 0) }
}

describe('writes', () => {
  it('putObject (core) of a stream of 4 parts: one report per part uploaded, then the object; the last equals the size', async () => {
    const size = 3 * 5 * MiB + 123_456
    const data = randomBytes(size)
    const chunks = Array.from({ length: Math.ceil(size / (256 * 1024)) }, (_, i) => data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024))
    const { onProgress, reports } = recorder()
    const key = s3.key('put/stream.bin')
    const entry = await putObject(store.context(), key, Readable.from(chunks), { partSize: 5 * MiB, onProgress })
    expect(entry.size_bytes).toBe(size)
    expectMonotonic(reports)
    // Parts finish in any order: each report before the last adds one part's bytes.
    expect(reports).toHaveLength(5)
    const parts = reports.slice(0, 4).map((report, i) => report.loadedBytes - (reports[i - 1]?.loadedBytes ?? 0))
    expect(parts.sort((a, b) => a - b)).toEqual([123_456, 5 * MiB, 5 * MiB, 5 * MiB])
    for (const report of reports.slice(0, 4)) expect(report).toMatchObject({ loadedObjects: 0, totalObjects: 1, key })
    // The size of a stream is not known up front: no totalBytes, ever.
    for (const report of reports) expect(report.totalBytes).toBeUndefined()
    expect(last(reports)).toStrictEqual({ loadedBytes: size, loadedObjects: 1, totalObjects: 1, key })
  })

  it('bytes and files: the total is known; a single PUT is one report', async () => {
    const bytes = randomBytes(10_000)
    const { onProgress, reports } = recorder()
    await store.putObject(s3.key('put/small.bin'), bytes, { onProgress })
    expect(reports).toStrictEqual([
      { loadedBytes: 10_000, totalBytes: 10_000, loadedObjects: 1, totalObjects: 1, key: s3.key('put/small.bin') },
    ])

    const file = join(dir, 'big.bin')
    await writeFile(file, randomBytes(9 * MiB))
    const fromFile = recorder()
    await store.putObject(s3.key('put/file.bin'), file, { onProgress: fromFile.onProgress })
    expectMonotonic(fromFile.reports)
    expect(fromFile.reports).toHaveLength(3) // 8 MiB, 1 MiB, the object
    for (const report of fromFile.reports) expect(report.totalBytes).toBe(9 * MiB)
    expect(last(fromFile.reports)).toMatchObject({ loadedBytes: 9 * MiB, loadedObjects: 1 })
  })

  it('a callback that throws at the second part fails the upload with its error: nothing published, no upload left open', async () => {
    const client = s3.s3.createClient()
    clients.push(client)
    const started = trackMultipartUploads(client)
    const sentParts: number[] = []
    client.middlewareStack.add(
      (next) => async (args) => {
        if (args.input && (args.input as { PartNumber?: number }).PartNumber !== undefined) sentParts.push(1)
        return next(args)
      },
      { step: 'initialize', name: 'countParts' },
    )
    const key = s3.key('put/refused.bin')
    const stop = new Error('stop at part 2')
    let calls = 0
    const upload = putObject({ client, bucket: s3.bucket }, key, Readable.from([randomBytes(12 * MiB), randomBytes(12 * MiB)]), {
      partSize: 5 * MiB,
      queueSize: 1,
      onProgress: () => {
        if (++calls === 2) throw stop
      },
    })
    await expect(upload).rejects.toBe(stop)
    expect(calls).toBe(2)
    expect(sentParts.length).toBeGreaterThanOrEqual(2)
    expect(sentParts.length).toBeLessThan(5) // it stopped: 24 MiB is 5 parts
    expect(started).toHaveLength(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, started, { prefix: s3.key('put/') })).toEqual([])
    expect(await store.exists(key)).toBe(false)
  })

  it('putShardArchive: one object per member, and the archive bytes as uploaded', async () => {
    const items = Array.from({ length: 5 }, (_, i) => ({ source: randomBytes(2000 + i), member_path: `m${i}.bin` }))
    const { onProgress, reports } = recorder()
    const shard = await store.putShardArchive(s3.key('shards/a.tar'), items, { onProgress })
    expectMonotonic(reports)
    expect(reports.slice(0, 5).map((report) => report.loadedObjects)).toEqual([1, 2, 3, 4, 5])
    expect(reports.slice(0, 5).map((report) => report.key)).toEqual(items.map((item) => `${s3.key('shards/a.tar')}#${item.member_path}`))
    expect(last(reports)).toMatchObject({ loadedObjects: 5, loadedBytes: shard.entry.size_bytes })
    expect(reports.every((report) => report.totalObjects === undefined && report.totalBytes === undefined)).toBe(true)
  })

  it('shardInto and putObjects (core stages): members packed and archive bytes; objects written with their bytes', async () => {
    const ctx = store.context()
    const packed = recorder()
    const items = Array.from({ length: 7 }, (_, i) => ({ source: randomBytes(1000), member_path: `s${i}.bin` }))
    const shards: ShardEntry[] = await pipe(
      items,
      shardInto(ctx, { prefix: s3.key('into'), maxEntries: 3, onProgress: packed.onProgress }),
      (source) => Array.fromAsync(source),
    )
    expect(shards).toHaveLength(3)
    expectMonotonic(packed.reports)
    expect(last(packed.reports)).toMatchObject({
      loadedObjects: 7,
      loadedBytes: shards.reduce((sum, shard) => sum + (shard.size_bytes as number), 0),
    })

    const put = recorder()
    const written: FileEntry[] = await pipe(
      Array.from({ length: 6 }, (_, i) => ({ key: s3.key(`many/${i}.bin`), data: randomBytes(100 * (i + 1)) })),
      putObjects(ctx, { concurrency: 3, onProgress: put.onProgress }),
      (source) => Array.fromAsync(source),
    )
    expect(put.reports).toHaveLength(6)
    expectMonotonic(put.reports)
    expect(last(put.reports)).toMatchObject({ loadedObjects: 6, loadedBytes: 2100 })
    expect(new Set(put.reports.map((report) => report.key))).toEqual(new Set(written.map((entry) => entry.key)))
  })

  it('ManifestWriter: objects uploaded and shard members added, with their bytes and the shards’', async () => {
    const { onProgress, reports } = recorder()
    const writer = store.openManifestWriter(s3.key('writer/manifest.jsonl'), { shardSize: { maxEntries: 2 }, onProgress })
    await writer.putObject(s3.key('writer/a.bin'), randomBytes(3000))
    for (let i = 0; i < 3; i++) await writer.addToShard(`m${i}.bin`, randomBytes(400))
    await writer.close()
    const shards = (await Array.fromAsync(store.iterManifestEntries(s3.key('writer/manifest.jsonl')))).filter(
      (entry): entry is ShardEntry => entry.kind === 'shard',
    )
    expect(shards).toHaveLength(2)
    expectMonotonic(reports)
    expect(last(reports)).toMatchObject({
      loadedObjects: 4,
      loadedBytes: 3000 + shards.reduce((sum, shard) => sum + (shard.size_bytes as number), 0),
    })
  })
})

describe('reads', () => {
  it('iterObjects: one report per object handed over, with its size; the sums are the manifest’s', async () => {
    const { manifest, sizes, total } = await dataset('iter')
    const { onProgress, reports } = recorder()
    const seen: string[] = []
    for await (const { entry, body } of store.iterObjects(manifest, { onProgress })) {
      // The report for an object comes before you get it.
      expect(last(reports)?.key).toBe(entry.key)
      seen.push(entry.key)
      await body.bytes()
    }
    expect(reports.map((report) => report.key)).toEqual(seen)
    expect(reports.map((report) => report.loadedObjects)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expectMonotonic(reports)
    expect(last(reports)).toStrictEqual({ loadedBytes: total, loadedObjects: 7, key: seen[6] })
    expect(sizes.size).toBe(7)
  })

  it('iterObjects: a callback that throws ends the iteration with its error', async () => {
    const { manifest } = await dataset('iter-throw')
    const stop = new Error('enough')
    const iterate = async () => {
      for await (const { body } of store.iterObjects(manifest, {
        onProgress: ({ loadedObjects }) => {
          if (loadedObjects === 3) throw stop
        },
      }))
        await body.bytes()
    }
    await expect(iterate()).rejects.toBe(stop)
  })

  it('downloadManifest and downloadObjects: files written, with their bytes, out of the files planned', async () => {
    const { manifest, total } = await dataset('download')
    const { onProgress, reports } = recorder()
    const paths = await store.downloadManifest(manifest, join(dir, 'manifest'), { onProgress })
    expect(paths.size).toBe(7)
    expectMonotonic(reports)
    expect(reports).toHaveLength(7)
    for (const report of reports) expect(report.totalObjects).toBe(7)
    expect(last(reports)).toMatchObject({ loadedObjects: 7, loadedBytes: total })

    const keys = [s3.key('download/loose-0.bin'), `${s3.key('download/shard.tar.gz')}#m1.bin`]
    const some = recorder()
    await store.downloadObjects(keys, join(dir, 'keys'), { onProgress: some.onProgress })
    expect(some.reports.map((report) => [report.loadedObjects, report.totalObjects])).toEqual([
      [1, 2],
      [2, 2],
    ])
    expect(last(some.reports)?.loadedBytes).toBe(1000 + 800)
  })

  it('downloadObject: bytes as they are written, out of the size; then the object', async () => {
    const key = s3.key('download/big.bin')
    await store.putObject(key, randomBytes(3 * MiB + 5))
    const { onProgress, reports } = recorder()
    const path = await store.downloadObject(key, join(dir, 'one', 'big.bin'), { onProgress })
    expect((await stat(path)).size).toBe(3 * MiB + 5)
    expect(reports.length).toBeGreaterThan(2)
    expectMonotonic(reports)
    for (const report of reports) expect(report).toMatchObject({ totalBytes: 3 * MiB + 5, totalObjects: 1, key })
    expect(last(reports)).toMatchObject({ loadedBytes: 3 * MiB + 5, loadedObjects: 1 })
    expect(reports.slice(0, -1).every((report) => report.loadedObjects === 0)).toBe(true)
    expect((await readFile(path)).byteLength).toBe(3 * MiB + 5)
  })
})

describe('deletes and compaction', () => {
  it('deletePrefix counts the objects deleted; deleteManifest out of the plan', async () => {
    for (let i = 0; i < 5; i++) await store.putObject(s3.key(`del/prefix/${i}.bin`), randomBytes(10))
    const { onProgress, reports } = recorder()
    const count = await store.deletePrefix(s3.key('del/prefix/'), { onProgress })
    expect(count).toBe(5)
    expect(last(reports)?.loadedObjects).toBe(5)

    const { manifest } = await dataset('del/manifest')
    const planned = recorder()
    const report = await store.deleteManifest(manifest, { onProgress: planned.onProgress })
    const deleted = report.deletedObjectCount + report.deletedArchiveCount + report.deletedManifestCount
    expect(deleted).toBe(5) // 3 loose, 1 archive, the manifest
    expectMonotonic(planned.reports)
    for (const progress of planned.reports) expect(progress.totalObjects).toBe(5)
    expect(last(planned.reports)?.loadedObjects).toBe(5)
  })

  it('compactManifest: entries written, and the compacted manifest’s bytes', async () => {
    const { manifest } = await dataset('compact')
    const { onProgress, reports } = recorder()
    const dst = s3.key('compact/flat.jsonl')
    const report = await store.compactManifest(manifest, dst, { expandShards: true, onProgress })
    expect(report.totalEntries).toBe(4)
    expectMonotonic(reports)
    const head = await store.getObjectMetadata(dst)
    expect(last(reports)).toMatchObject({ loadedObjects: 7, loadedBytes: head.ContentLength, key: dst })
  })
})
