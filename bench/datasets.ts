/**
 * The datasets of the cold-process, latency and bandwidth tables (issue 15), their sizes (full and
 * `--quick`) and keys, and how they are written:
 *
 * - loose objects of 4 KiB (half random bytes, half a repeated pattern: gzip has work to do) and a
 *   manifest listing them;
 * - tar.gz shards of such objects in the layout Python s3exchange writes: one gzip stream (not
 *   seekable), the internal manifest first. No shard set written by the Python library exists in
 *   the repository (test/fixtures holds a few small ones) and Python s3exchange is not installable
 *   here, so this library's `ShardWriter` writes them with `seekable: false`; the interop tests
 *   prove that Python reads such archives and that this library reads Python's;
 * - a big manifest of file entries (about 160 bytes a line);
 * - big plain tar shards of 1 MiB members (bench/read.ts `putBigShard`), also read as one object.
 */
import { randomBytes } from 'node:crypto'
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { type ManifestEntry, S3ExchangeStore, type ShardEntry, ShardWriter, serializeEntry } from 's3exchange'
import { inParallel } from './lib.ts'
import { putBigShard, keys as readKeys } from './read.ts'

/** How big each dataset is. */
export interface Sizes {
  /** Loose objects of 4 KiB (cold table). */
  looseCount: number
  /** Shards × members of 4 KiB (cold table). */
  shards: { count: number; members: number }
  /** Entries of the big manifest. */
  manifestEntries: number
  /** Objects of 4 KiB put. */
  putCount: number
  /** Big plain shards to iterate, in MiB (1 MiB members). */
  bigShardsMiB: number[]
  /** The shard written, in MiB (1 MiB members). */
  writeShardMiB: number
  /** Loose objects of 4 KiB iterated through latency. */
  latencyLooseCount: number
  /** Shards × members of 4 KiB iterated through latency. */
  latencyShards: { count: number; members: number }
  /** The big shard and object read through the bandwidth cap, in MiB. */
  bandwidthMiB: number
}

export const FULL_SIZES: Sizes = {
  looseCount: 2000,
  shards: { count: 8, members: 2500 },
  manifestEntries: 500_000,
  putCount: 2000,
  bigShardsMiB: [256, 1024],
  writeShardMiB: 1024,
  latencyLooseCount: 2000,
  latencyShards: { count: 64, members: 64 },
  bandwidthMiB: 256,
}

export const QUICK_SIZES: Sizes = {
  looseCount: 500,
  shards: { count: 8, members: 500 },
  manifestEntries: 50_000,
  putCount: 500,
  bigShardsMiB: [64],
  writeShardMiB: 128,
  latencyLooseCount: 400,
  latencyShards: { count: 16, members: 32 },
  bandwidthMiB: 64,
}

export const OBJECT_SIZE = 4096

/** Keys of the datasets; each depends on its size, so quick and full datasets never mix. */
export const datasetKeys = {
  loose: (count: number) => ({ prefix: `cold/loose-${count}`, manifest: `cold/loose-${count}/manifest.jsonl` }),
  looseKey: (prefix: string, i: number) => `${prefix}/obj-${String(i).padStart(6, '0')}.bin`,
  shards: (count: number, members: number) => {
    const prefix = `cold/shards-${count}x${members}`
    return {
      manifest: `${prefix}/manifest.jsonl`,
      archives: Array.from({ length: count }, (_, s) => `${prefix}/shard-${String(s).padStart(5, '0')}.tar.gz`),
    }
  },
  manifest: (entries: number) => `cold/manifest-${entries}/manifest.jsonl`,
  bigShard: (mib: number) => ({ archive: readKeys.bigArchive(mib), manifest: readKeys.bigManifest(mib) }),
}

/** A 4 KiB object: 2 KiB of random bytes, then 2 KiB of a pattern. */
export function smallObject(): Buffer {
  const data = Buffer.alloc(OBJECT_SIZE, 'sample-')
  randomBytes(OBJECT_SIZE / 2).copy(data)
  return data
}

async function exists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  )
}

async function putManifestText(client: S3Client, bucket: string, key: string, text: string): Promise<void> {
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: text, ContentType: 'application/x-ndjson' } }).done()
}

/** Loose objects and their manifest, unless already there. Returns the manifest's key. */
export async function prepareLoose(client: S3Client, bucket: string, count: number): Promise<string> {
  const { prefix, manifest } = datasetKeys.loose(count)
  if (await exists(client, bucket, manifest)) return manifest
  const keys = Array.from({ length: count }, (_, i) => datasetKeys.looseKey(prefix, i))
  await inParallel(keys, 32, (key) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: smallObject() })))
  const entries = keys.map((key) => `${serializeEntry({ kind: 'file', key, size_bytes: OBJECT_SIZE })}\n`)
  await putManifestText(client, bucket, manifest, entries.join(''))
  return manifest
}

/** tar.gz shards in Python's layout (one gzip stream) and their manifest, unless already there. */
export async function prepareShards(client: S3Client, bucket: string, count: number, members: number): Promise<string> {
  const { manifest, archives } = datasetKeys.shards(count, members)
  if (await exists(client, bucket, manifest)) return manifest
  const entries: ShardEntry[] = []
  await inParallel(
    archives.map((archive, s) => ({ archive, s })),
    2,
    async ({ archive, s }) => {
      const writer = new ShardWriter({ client, bucket }, archive, { compression: 'gzip', seekable: false })
      for (let i = 0; i < members; i++) {
        const n = s * members + i
        await writer.add({ source: smallObject(), member_path: `${String(n).padStart(6, '0')}.bin`, id: String(n), meta: { sr: 16000 } })
      }
      entries[s] = await writer.finish()
    },
  )
  await new S3ExchangeStore({ client, bucket }).writeManifest(manifest, entries)
  return manifest
}

/** A manifest of `count` file entries (about 160 bytes a line), unless already there. Returns its key and size. */
export async function prepareManifest(client: S3Client, bucket: string, count: number): Promise<{ key: string; bytes: number }> {
  const key = datasetKeys.manifest(count)
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined)
  if (head?.ContentLength) return { key, bytes: head.ContentLength }
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    const entry: ManifestEntry = {
      kind: 'file',
      key: `training/123/samples/${String(i).padStart(7, '0')}.wav`,
      id: String(i).padStart(7, '0'),
      meta: { sr: 16000, length: 15342 + (i % 977), lang: 'en' },
      size_bytes: 30684 + (i % 977) * 2,
      etag: randomBytes(16).toString('hex'),
    }
    lines.push(`${serializeEntry(entry)}\n`)
  }
  const text = lines.join('')
  await putManifestText(client, bucket, key, text)
  return { key, bytes: Buffer.byteLength(text) }
}

/** A big plain tar shard of `mib` members of 1 MiB and its manifest, unless already there. */
export async function prepareBigShard(client: S3Client, bucket: string, mib: number): Promise<{ archive: string; manifest: string }> {
  const keys = datasetKeys.bigShard(mib)
  if (!(await exists(client, bucket, keys.manifest))) await putBigShard(client, bucket, mib)
  return keys
}
