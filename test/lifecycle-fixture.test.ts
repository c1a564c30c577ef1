/**
 * The seed README's lifecycle, on the bucket that Python s3exchange 0.1.1 wrote (test/fixtures):
 * list keys, filter a manifest by prefix, compact, download, and delete by manifest, in that order,
 * with a store fenced to the fixture's namespace. Each step is checked against what Python
 * recorded (expected.json) or wrote (mixed/compact.jsonl). The steps run in order and build on
 * each other.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { uploadDirectory } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { DeleteRefusedError, type ManifestEntry, ObjectNotFoundError, S3ExchangeStore } from 's3exchange'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const fixture = join(import.meta.dirname, 'fixtures/python-s3exchange-0.1.1')

interface Expected {
  roots: Record<
    string,
    {
      entries_resolved: ManifestEntry[]
      files: ManifestEntry[]
      objects: { entry: ManifestEntry; size: number; sha256: string }[]
    }
  >
}

const expected: Expected = JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8'))
const mixed = 'exchange/shared/mixed/manifest.jsonl'
const s3 = useTestS3()
let store: S3ExchangeStore
let fixtureKeys: string[]
const temporary: string[] = []

beforeAll(async () => {
  fixtureKeys = (await uploadDirectory(s3.client, s3.bucket, join(fixture, 'bucket'))).sort()
  // The fence: nothing outside the fixture's namespace can be deleted through this store.
  store = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, basePrefix: 'exchange/shared' })
})

afterAll(async () => {
  for (const dir of temporary) await rm(dir, { recursive: true, force: true })
})

const keyOf = (entry: ManifestEntry) => (entry.kind === 'shard' ? entry.archive_key : entry.key)
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

describe('the seed README flow on the Python fixture', () => {
  const compacted = 'exchange/shared/mixed/manifest-compact.jsonl'
  const expanded = 'exchange/shared/mixed/manifest-expanded.jsonl'

  it('1. list_keys: every object of the fixture, and only those under a narrower prefix', async () => {
    expect(fixtureKeys).toHaveLength(23)
    expect((await Array.fromAsync(store.listKeys('exchange/shared/'))).sort()).toEqual(fixtureKeys)
    expect((await Array.fromAsync(store.listKeys('exchange/shared/shards/'))).sort()).toEqual([
      'exchange/shared/shards/manifest.jsonl',
      'exchange/shared/shards/manifests/part-20261123-234044-fcbd6f72.jsonl',
      'exchange/shared/shards/shard-00000.tar.gz',
      'exchange/shared/shards/shard-00001.tar',
      'exchange/shared/shards/shard-00002.tar.gz',
    ])
  })

  it('2. list_by_manifest_prefix: loose keys and shard members filtered by prefix, in the order Python lists them', async () => {
    const files = (root: string) => expected.roots[root]?.files ?? []
    const filtered = (root: string, prefix: string) => files(root).filter((entry) => keyOf(entry).startsWith(prefix))

    const loose = await Array.fromAsync(store.listByManifestPrefix(mixed, 'exchange/shared/loose/file-00'))
    expect(loose).toStrictEqual(filtered(mixed, 'exchange/shared/loose/file-00'))
    expect(loose).toHaveLength(11)

    const members = await Array.fromAsync(store.listByManifestPrefix(mixed, 'exchange/shared/shards/shard-00000.tar.gz#000'))
    expect(members).toStrictEqual(filtered(mixed, 'exchange/shared/shards/shard-00000.tar.gz#'))
    expect(members.map(keyOf)).toEqual([0, 1, 2, 3, 4].map((i) => `exchange/shared/shards/shard-00000.tar.gz#000${i}.bin`))

    for (const root of Object.keys(expected.roots)) {
      expect(await Array.fromAsync(store.listByManifestPrefix(root, 'exchange/shared/')), root).toStrictEqual(files(root))
      const plainTar = 'exchange/shared/shards/shard-00001.tar#'
      expect(await Array.fromAsync(store.listByManifestPrefix(root, plainTar)), root).toStrictEqual(filtered(root, plainTar))
    }
    expect(await Array.fromAsync(store.listByManifestPrefix(mixed, 'exchange/shared/nothing'))).toEqual([])
  })

  it("3. compact_manifest: refs resolved into one flat manifest, then with shards expanded (Python's compact.jsonl)", async () => {
    const report = await store.compactManifest(mixed, compacted, { resolveRefs: true, expandShards: false })
    expect(report).toStrictEqual({ totalEntries: 12, removedEntries: 0, resolvedRefs: 0, expandedShards: 0 })
    expect(await Array.fromAsync(store.iterManifestEntries(compacted, { resolveRefs: false }))).toStrictEqual(
      expected.roots[mixed]?.entries_resolved,
    )

    const withMembers = await store.compactManifest(mixed, expanded, { expandShards: true })
    expect(withMembers).toStrictEqual({ totalEntries: 12, removedEntries: 0, resolvedRefs: 0, expandedShards: 5 })
    const written = await (await store.getObject(expanded)).bytes()
    expect(Buffer.from(written).toString('utf8')).toBe(await readFile(join(fixture, 'bucket/exchange/shared/mixed/compact.jsonl'), 'utf8'))

    // Reading the compacted manifest gives what Python read from its own compact.jsonl.
    const objects = []
    for await (const { entry, body } of store.iterObjects(expanded)) {
      const bytes = await body.bytes()
      objects.push({ entry, size: bytes.byteLength, sha256: sha256(bytes) })
    }
    expect(objects).toStrictEqual(expected.roots['exchange/shared/mixed/compact.jsonl']?.objects)
  })

  it('4. download: every object of the mixed root, with the bytes Python read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 's3x-lifecycle-'))
    temporary.push(dir)
    const paths = await store.downloadManifest(mixed, join(dir, 'mixed'), { concurrency: 4 })
    const want = new Map((expected.roots[mixed]?.objects ?? []).map((o) => [keyOf(o.entry), o]))
    expect([...paths.keys()].sort()).toEqual([...want.keys()].sort())
    for (const [key, path] of paths) {
      const bytes = await readFile(path)
      expect(bytes.byteLength, key).toBe(want.get(key)?.size)
      expect(sha256(bytes), key).toBe(want.get(key)?.sha256)
    }
    expect((await readdir(join(dir, 'mixed'))).sort()).toEqual([
      '0000.bin',
      '0001.bin',
      '0002.bin',
      '0003.bin',
      '0004.bin',
      'file-000.txt',
      'file-001.txt',
      'file-002.txt',
      'file-003.txt',
      'file-004.txt',
    ])
  })

  it('5. delete_manifest(delete_manifests=True, dedupe=True): a dry run, then the deletion, counted as Python counts', async () => {
    const gone = [
      ...[0, 1, 2, 3, 4].map((i) => `exchange/shared/loose/file-00${i}.txt`),
      'exchange/shared/shards/shard-00000.tar.gz',
      mixed,
    ]
    const before = (await Array.fromAsync(store.listKeys('exchange/shared/'))).sort()
    expect(before).toEqual([...fixtureKeys, compacted, expanded].sort())

    const dry = await store.deleteManifest(mixed, { deleteManifests: true, dedupe: true, dryRun: true })
    expect([dry.deletedObjectCount, dry.deletedArchiveCount, dry.deletedManifestCount]).toEqual([5, 1, 1])
    expect((await Array.fromAsync(store.listKeys('exchange/shared/'))).sort()).toEqual(before)

    // Python: refs are inlined, so file-000..004 (deduplicated), shard-00000 and the root itself.
    const report = await store.deleteManifest(mixed, { deleteManifests: true, dedupe: true })
    expect(report.deletedObjectCount).toBe(5)
    expect(report.deletedArchiveCount).toBe(1)
    expect(report.deletedManifestCount).toBe(1)
    expect(report.errors).toEqual({})
    expect(report.outsideFence).toEqual([])
    expect((await Array.fromAsync(store.listKeys('exchange/shared/'))).sort()).toEqual(before.filter((key) => !gone.includes(key)))
  })

  it('6. what is left: the manifests that shared those objects still read, their objects are gone', async () => {
    const parts = 'exchange/shared/parts/manifest.jsonl'
    expect(await Array.fromAsync(store.iterManifestEntries(parts))).toStrictEqual(expected.roots[parts]?.entries_resolved)
    const error = await Array.fromAsync(store.iterObjects(parts)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ObjectNotFoundError)
    // The writer's dataset was not touched: it still reads whole.
    const writer = 'exchange/shared/writer/manifest.jsonl'
    const sizes = []
    for await (const { body } of store.iterObjects(writer)) sizes.push((await body.bytes()).byteLength)
    expect(sizes).toEqual(expected.roots[writer]?.objects.map((o) => o.size))
  })

  it('7. the fence holds, and the rest of the namespace is deleted by prefix', async () => {
    await expect(store.deletePrefix('exchange/')).rejects.toBeInstanceOf(DeleteRefusedError)
    await expect(store.deletePrefix('exchange/shared-other/')).rejects.toBeInstanceOf(DeleteRefusedError)
    await expect(store.deleteKey('exchange/elsewhere.txt')).rejects.toBeInstanceOf(DeleteRefusedError)

    const writer = await store.deleteManifest('exchange/shared/writer/manifest.jsonl', { referencedManifests: true })
    expect([writer.deletedObjectCount, writer.deletedArchiveCount, writer.deletedManifestCount]).toEqual([1, 3, 3])
    expect(await Array.fromAsync(store.listKeys('exchange/shared/writer/'))).toEqual([])

    const left = (await Array.fromAsync(store.listKeys('exchange/shared/'))).length
    expect(left).toBe(23 + 2 - 7 - 7)
    expect(await store.deletePrefix('exchange/shared', { dryRun: true })).toBe(left)
    expect(await store.deletePrefix('exchange/shared')).toBe(left)
    expect(await Array.fromAsync(store.listKeys('exchange/'))).toEqual([])
  })
})
