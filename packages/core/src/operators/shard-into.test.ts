/**
 * shardInto against a real (local) S3: archives split exactly as Python's Shard.split_items
 * splits items, names unique per call, entries in order; a failure or an early exit leaves no
 * partial archive and no open multipart upload behind, while archives already yielded stay.
 */
import { randomBytes } from 'node:crypto'
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { countRequests, type MultipartUpload, pendingMultipartUploads, trackMultipartUploads } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { pipe } from 'it-pipe'
import { afterAll, describe, expect, it } from 'vitest'
import { openArchiveMember } from '../archive/random-access.js'
import { readShardEntries, readShardMembers } from '../archive/scan-archive.js'
import type { ShardItem } from '../archive/shard-items.js'
import type { ShardEntry } from '../format/entries.js'
import { ConfigurationError, ShardWriteError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { type ShardIntoOptions, shardInto } from './shard-into.js'

const s3 = useTestS3()
const MiB = 1024 * 1024
const PART = 5 * MiB
const clients: S3Client[] = []
afterAll(() => {
  for (const client of clients) client.destroy()
})

function ctx(): S3Context {
  return { client: s3.client, bucket: s3.bucket }
}

function tracked(): { ctx: S3Context; started: MultipartUpload[]; counts: Record<string, number> } {
  const client = s3.s3.createClient()
  clients.push(client)
  return { ctx: { client, bucket: s3.bucket }, started: trackMultipartUploads(client), counts: countRequests(client) }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const response = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))
  return (response.Contents ?? []).map((object) => object.Key as string).sort()
}

/** Python's Shard.split_items, as a reference: indices of the items in each batch. */
function splitItems(sizes: number[], maxEntries?: number, maxBytes?: number): number[][] {
  const batches: number[][] = []
  let batch: number[] = []
  let bytes = 0
  for (const [i, size] of sizes.entries()) {
    const full = (maxEntries !== undefined && batch.length >= maxEntries) || (maxBytes !== undefined && bytes + size > maxBytes)
    if (batch.length > 0 && full) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(i)
    bytes += size
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}

function itemsOfSizes(sizes: number[]): ShardItem[] {
  return sizes.map((size, i) => ({ source: Buffer.alloc(size, i % 256), member_path: `m-${i}.bin`, id: String(i) }))
}

/** The member paths of each shard, read back from the archives. */
async function groupsOf(entries: ShardEntry[]): Promise<string[][]> {
  const groups: string[][] = []
  for (const entry of entries) groups.push((await Array.fromAsync(readShardEntries(ctx(), entry))).map((e) => e.member_path as string))
  return groups
}

const asPaths = (batches: number[][]) => batches.map((batch) => batch.map((i) => `m-${i}.bin`))

describe('splitting, as Python split_items', () => {
  it.each([
    { name: 'maxEntries 3', sizes: [1, 1, 1, 1, 1, 1, 1], maxEntries: 3 },
    { name: 'maxEntries 1', sizes: [5, 0, 5], maxEntries: 1 },
    { name: 'maxBytes 10, an item larger than maxBytes alone', sizes: [4, 4, 4, 20, 1, 1, 10, 0, 0, 5, 5], maxBytes: 10 },
    { name: 'maxBytes exactly filled', sizes: [5, 5, 5, 5, 10, 10], maxBytes: 10 },
    { name: 'the first item larger than maxBytes', sizes: [11, 11, 1], maxBytes: 10 },
    { name: 'both limits', sizes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 1, 1], maxEntries: 3, maxBytes: 12 },
    { name: 'no limit', sizes: [100, 200, 300] },
  ])('$name', async ({ sizes, maxEntries, maxBytes }) => {
    const prefix = s3.key(`split/${randomBytes(4).toString('hex')}`)
    const entries = await Array.fromAsync(shardInto(ctx(), { prefix, compression: null, maxEntries, maxBytes })(itemsOfSizes(sizes)))
    const expected = splitItems(sizes, maxEntries, maxBytes)
    expect(entries.map((entry) => entry.count)).toEqual(expected.map((batch) => batch.length))
    expect(await groupsOf(entries)).toEqual(asPaths(expected))
    expect(await keysUnder(`${prefix}/`)).toEqual(entries.map((entry) => entry.archive_key).sort())
  })

  it('files and sized streams count by their size', async () => {
    const prefix = s3.key('split/mixed')
    async function* stream(size: number) {
      yield Buffer.alloc(size)
    }
    const items: ShardItem[] = [
      { source: Buffer.alloc(6), member_path: 'a' },
      { source: stream(6), member_path: 'b', size_bytes: 6 },
      { source: stream(3), member_path: 'c', size_bytes: 3 },
      { source: Buffer.alloc(1), member_path: 'd' },
    ]
    const entries = await Array.fromAsync(shardInto(ctx(), { prefix, compression: null, maxBytes: 10 })(items))
    expect(await groupsOf(entries)).toEqual([['a'], ['b', 'c', 'd']])
  })
})

describe('archive names', () => {
  it('default names are unique per call: shard-<YYYYMMDD-HHMMSS>-<6 hex>-<index>.tar.gz', async () => {
    const prefix = s3.key('names/default')
    const first = await Array.fromAsync(shardInto(ctx(), { prefix, maxEntries: 1 })(itemsOfSizes([1, 1])))
    const second = await Array.fromAsync(shardInto(ctx(), { prefix, maxEntries: 1 })(itemsOfSizes([1, 1])))
    const keys = [...first, ...second].map((entry) => entry.archive_key)
    expect(new Set(keys).size).toBe(4)
    for (const [i, key] of keys.entries()) {
      expect(key).toMatch(new RegExp(`^${prefix}/shard-\\d{8}-\\d{6}-[0-9a-f]{6}-0000${i % 2}\\.tar\\.gz$`))
    }
    expect(keys[0]?.slice(0, -13)).toBe(keys[1]?.slice(0, -13))
    expect(keys[0]?.slice(0, -13)).not.toBe(keys[2]?.slice(0, -13))
    expect(await keysUnder(`${prefix}/`)).toEqual([...keys].sort())
  })

  it('a stage used for two runs does not overwrite the archives of the first', async () => {
    const prefix = s3.key('names/reused')
    const stage = shardInto(ctx(), { prefix, compression: null })
    const [first] = await Array.fromAsync(stage([{ source: Buffer.from('first run'), member_path: 'a' }]))
    const [second] = await Array.fromAsync(stage([{ source: Buffer.from('second run'), member_path: 'a' }]))
    expect(first?.archive_key).not.toBe(second?.archive_key)
    expect(await keysUnder(`${prefix}/`)).toHaveLength(2)
    const read = []
    for await (const { body } of readShardMembers(ctx(), first as ShardEntry)) read.push(await body.text())
    expect(read).toEqual(['first run'])
  })

  it('a plain tar is named .tar', async () => {
    const prefix = s3.key('names/plain/')
    const [entry] = await Array.fromAsync(shardInto(ctx(), { prefix, compression: null })(itemsOfSizes([1])))
    expect(entry?.archive_key).toMatch(new RegExp(`^${s3.key('names/plain')}/shard-\\d{8}-\\d{6}-[0-9a-f]{6}-00000\\.tar$`))
  })

  it("compression: 'zstd' names them .tar.zst; they read back, streamed and by member path", async () => {
    const prefix = s3.key('names/zstd')
    const items = Array.from({ length: 5 }, (_, i) => ({ source: Buffer.from(`zstd member ${i}`), member_path: `z/${i}.txt` }))
    const entries = await Array.fromAsync(shardInto(ctx(), { prefix, compression: 'zstd', maxEntries: 3 })(items))
    expect(entries.map((entry) => [entry.compression, entry.count])).toEqual([
      ['zstd', 3],
      ['zstd', 2],
    ])
    for (const entry of entries)
      expect(entry.archive_key).toMatch(new RegExp(`^${prefix}/shard-\\d{8}-\\d{6}-[0-9a-f]{6}-0000[01]\\.tar\\.zst$`))
    const read: string[] = []
    for (const entry of entries) for await (const { body } of readShardMembers(ctx(), entry)) read.push(await body.text())
    expect(read).toEqual(items.map((item) => item.source.toString()))
    const member = await openArchiveMember(ctx(), entries[1]?.archive_key as string, 'z/4.txt')
    expect(await member?.text()).toBe('zstd member 4')
  })

  it('archiveName names the archives under prefix (a trailing slash is dropped)', async () => {
    const prefix = s3.key('names/custom')
    const options: ShardIntoOptions = {
      prefix: `${prefix}//`,
      maxEntries: 2,
      archiveName: (index) => `part-${index}.tar`,
      compression: null,
    }
    const entries = await Array.fromAsync(shardInto(ctx(), options)(itemsOfSizes([1, 1, 1, 1, 1])))
    expect(entries.map((entry) => entry.archive_key)).toEqual([`${prefix}/part-0.tar`, `${prefix}/part-1.tar`, `${prefix}/part-2.tar`])
  })

  it("archiveName's extension sets the compression; a compression it contradicts is a ConfigurationError, nothing written", async () => {
    const prefix = s3.key('names/extension')
    const [plain] = await Array.fromAsync(shardInto(ctx(), { prefix, archiveName: (i) => `p-${i}.tar` })(itemsOfSizes([1])))
    expect(plain?.compression).toBeNull()
    const { ctx: counted, counts } = tracked()
    const error = await Array.fromAsync(
      shardInto(counted, { prefix, compression: 'gzip', archiveName: (i) => `c-${i}.tar` })(itemsOfSizes([1])),
    ).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ConfigurationError)
    expect(error).toMatchObject({ option: 'compression', key: `${prefix}/c-0.tar` })
    expect(counts.PutObjectCommand ?? 0).toBe(0)
    expect(counts.CreateMultipartUploadCommand ?? 0).toBe(0)
  })
})

describe('output', () => {
  it('yields complete ShardEntries in order, whose members read back', async () => {
    const prefix = s3.key('output/in-order')
    const items = Array.from({ length: 7 }, (_, i) => ({ source: Buffer.from(`member ${i}`), member_path: `dir/${i}.txt`, id: `id-${i}` }))
    const entries = await pipe(
      items,
      shardInto(ctx(), { prefix, maxEntries: 3, archiveName: (i) => `s-${i}.tar.gz` }),
      Array.fromAsync<ShardEntry>,
    )
    expect(entries.map((entry) => [entry.archive_key, entry.count])).toEqual([
      [`${prefix}/s-0.tar.gz`, 3],
      [`${prefix}/s-1.tar.gz`, 3],
      [`${prefix}/s-2.tar.gz`, 1],
    ])
    const read: string[] = []
    for (const entry of entries) {
      expect(entry).toMatchObject({ kind: 'shard', format: 'tar', compression: 'gzip', internal_manifest_path: '__manifest__.jsonl' })
      for await (const { entry: member, body } of readShardMembers(ctx(), entry)) read.push(`${member.id}=${await body.text()}`)
    }
    expect(read).toEqual(items.map((_, i) => `id-${i}=member ${i}`))
  })

  it('no items, no archive', async () => {
    const prefix = s3.key('output/none')
    expect(await Array.fromAsync(shardInto(ctx(), { prefix })([]))).toEqual([])
    expect(await keysUnder(`${prefix}/`)).toEqual([])
  })
})

describe('failures and early exits', () => {
  it('a source failing mid-shard: no archive for that shard, no open upload, earlier shards stay', async () => {
    const t = tracked()
    const prefix = s3.key('fail/source')
    async function* breaking() {
      for (let i = 0; i < 11; i++) yield randomBytes(MiB)
      throw new Error('the source broke')
    }
    const items: ShardItem[] = [
      { source: Buffer.from('a'), member_path: 'a' },
      { source: Buffer.from('b'), member_path: 'b' },
      { source: Buffer.from('c'), member_path: 'c' },
      { source: breaking(), member_path: 'broken.bin', size_bytes: 12 * MiB },
      { source: Buffer.from('e'), member_path: 'e' },
    ]
    const yielded: ShardEntry[] = []
    const run = async () => {
      for await (const entry of shardInto(t.ctx, { prefix, maxEntries: 2, partSize: PART, archiveName: (i) => `s-${i}.tar` })(items)) {
        yielded.push(entry)
      }
    }
    await expect(run()).rejects.toThrow('the source broke')
    expect(yielded.map((entry) => entry.archive_key)).toEqual([`${prefix}/s-0.tar`])
    expect(await keysUnder(`${prefix}/`)).toEqual([`${prefix}/s-0.tar`])
    expect(t.started.map((upload) => upload.key)).toEqual([`${prefix}/s-1.tar`])
    expect(t.counts.AbortMultipartUploadCommand).toBe(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, t.started, { prefix: s3.prefix })).toEqual([])
    expect((await groupsOf(yielded))[0]).toEqual(['a', 'b'])
  })

  it('a bad item after a large member aborts the open shard: nothing under the prefix, no open upload', async () => {
    const t = tracked()
    const prefix = s3.key('fail/bad-item')
    const items: ShardItem[] = [
      { source: randomBytes(2 * PART + 1), member_path: 'big.bin' },
      { source: Buffer.from('x'), member_path: '../escape' },
    ]
    const error = await Array.fromAsync(shardInto(t.ctx, { prefix, partSize: PART })(items)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ memberPath: '../escape' })
    expect(t.started).toHaveLength(1)
    expect(await pendingMultipartUploads(s3.client, s3.bucket, t.started, { prefix: s3.prefix })).toEqual([])
    expect(await keysUnder(`${prefix}/`)).toEqual([])
  })

  it('breaking out of the loop closes the input and leaves only the archives already yielded', async () => {
    const t = tracked()
    const prefix = s3.key('fail/break')
    let pulled = 0
    let closed = false
    async function* items(): AsyncGenerator<ShardItem> {
      try {
        for (let i = 0; i < 6; i++) {
          pulled++
          yield { source: i === 2 ? randomBytes(PART + 1) : Buffer.from(String(i)), member_path: `${i}` }
        }
      } finally {
        closed = true
      }
    }
    const seen: ShardEntry[] = []
    for await (const entry of shardInto(t.ctx, { prefix, maxEntries: 2, partSize: PART, archiveName: (i) => `s-${i}.tar` })(items())) {
      seen.push(entry)
      break
    }
    expect(seen.map((entry) => entry.archive_key)).toEqual([`${prefix}/s-0.tar`])
    expect(closed).toBe(true)
    expect(pulled).toBe(3)
    expect(await keysUnder(`${prefix}/`)).toEqual([`${prefix}/s-0.tar`])
    expect(await pendingMultipartUploads(s3.client, s3.bucket, t.started, { prefix: s3.prefix })).toEqual([])
  })
})
