/**
 * ShardWriter against a real (local) S3: plain and gzip shards, one PUT and multipart, read back
 * through readShardMembers, Python's tarfile and GNU tar; the internal manifest first, in Python's
 * field order, with offsets that a ranged GET confirms; the ShardEntry as Python writes it; bad
 * member paths refused before anything is written; a source failing midway leaves nothing behind.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { constants, gunzipSync, inflateRawSync } from 'node:zlib'
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import {
  countRequests,
  type MultipartUpload,
  pendingMultipartUploads,
  type RequestCounts,
  rejection,
  trackMultipartUploads,
} from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FileEntry, type ShardEntry, serializeEntry } from '../format/entries.js'
import { ShardWriteError } from '../format/errors.js'
import type { S3Context } from '../s3/context.js'
import { readShardMembers } from './scan-archive.js'
import type { ShardItem } from './shard-items.js'
import { ShardWriter, type ShardWriterOptions } from './shard-writer.js'
import { readTarMembers } from './tar-reader.js'

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

const s3 = useTestS3()
const MiB = 1024 * 1024
const PART = 5 * MiB
const LOCALE = { ...process.env, LC_ALL: 'C.UTF-8' }
const dir = mkdtempSync(join(tmpdir(), 's3x-shard-writer-'))
const clients: S3Client[] = []

afterAll(() => {
  for (const client of clients) client.destroy()
  rmSync(dir, { recursive: true, force: true })
})

interface Watched {
  ctx: S3Context
  counts: RequestCounts
  started: MultipartUpload[]
}

function watched(): Watched {
  const client = s3.s3.createClient()
  clients.push(client)
  return { ctx: { client, bucket: s3.bucket }, counts: countRequests(client), started: trackMultipartUploads(client) }
}

/** One member to write: its data, and how to hand it over. */
interface Spec {
  path: string
  data: Buffer
  as?: 'bytes' | 'file' | 'stream' | 'unsized-stream' | 'readable'
  id?: string
  meta?: Record<string, unknown>
}

let tempFiles = 0
function item(spec: Spec): ShardItem {
  const base = { member_path: spec.path, ...(spec.id === undefined ? {} : { id: spec.id }), ...(spec.meta ? { meta: spec.meta } : {}) }
  switch (spec.as ?? 'bytes') {
    case 'bytes':
      return { ...base, source: spec.data }
    case 'file': {
      const path = join(dir, `source-${tempFiles++}.bin`)
      writeFileSync(path, spec.data)
      return { ...base, source: path }
    }
    case 'stream':
      return { ...base, source: chunks(spec.data, 64 * 1024), size_bytes: spec.data.byteLength }
    case 'unsized-stream':
      return { ...base, source: chunks(spec.data, 1000) }
    case 'readable':
      return { ...base, source: Readable.from(chunks(spec.data, 10_000)), size_bytes: spec.data.byteLength }
  }
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

/** Members covering the edge cases: sizes around a tar block, empty, long and non-ASCII paths, every kind of source. */
function specs(big: boolean): Spec[] {
  const list: Spec[] = [
    { path: 'a.txt', data: Buffer.from('hello'), id: 'a', meta: { sr: 16000, tags: ['x', 'ÿ'], ok: true, none: null } },
    { path: 'dïr/ünïcødé 🎧.wav', data: randomBytes(700), id: 'ünï', meta: { note: 'é🎧' } },
    { path: 'x'.repeat(100), data: randomBytes(100) },
    { path: `long/${'l'.repeat(120)}/clip.bin`, data: randomBytes(1500), as: 'file' },
    { path: 'empty', data: Buffer.alloc(0) },
    { path: 'empty-stream', data: Buffer.alloc(0), as: 'stream' },
    { path: 'size-511', data: randomBytes(511) },
    { path: 'size-512', data: randomBytes(512), as: 'stream' },
    { path: 'size-513', data: randomBytes(513), as: 'unsized-stream' },
    { path: 'size-1024', data: randomBytes(1024), as: 'readable' },
    { path: 'streamed/300k.bin', data: randomBytes(300 * 1024), as: 'bytes', id: 'big-bytes' },
    { path: 'with space/and#hash.txt', data: Buffer.from('#'), as: 'file' },
  ]
  if (big) list.splice(5, 0, { path: 'big/random.bin', data: randomBytes(PART + 1234567), as: 'stream', id: 'big' })
  return list
}

async function writeShard(ctx: S3Context, key: string, list: Spec[], options: ShardWriterOptions) {
  const writer = new ShardWriter(ctx, key, { partSize: PART, ...options })
  const added: FileEntry[] = []
  for (const spec of list) added.push(await writer.add(item(spec)))
  expect(writer.count).toBe(list.length)
  expect(writer.dataBytes).toBe(list.reduce((sum, spec) => sum + spec.data.byteLength, 0))
  return { added, entry: await writer.finish() }
}

async function getBytes(key: string, range?: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key, Range: range }))
  return Buffer.from(await (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
}

async function exists(key: string): Promise<boolean> {
  try {
    await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    return true
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false
    throw error
  }
}

/** The uncompressed tar of an archive object. */
async function tarOf(key: string): Promise<Buffer> {
  const bytes = await getBytes(key)
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes
}

/** Members of a tar, in order, with their data. */
async function tarMembers(tar: Buffer): Promise<{ name: string; dataOffset: number; data: Buffer }[]> {
  const out: { name: string; dataOffset: number; data: Buffer }[] = []
  for await (const member of readTarMembers(Readable.from([tar]), { archiveKey: 'x' })) {
    const parts: Buffer[] = []
    for await (const chunk of member.stream) parts.push(Buffer.from(chunk))
    out.push({ name: member.name, dataOffset: member.dataOffset, data: Buffer.concat(parts) })
  }
  return out
}

const PYTHON_EXTRACT = `
import json, sys, tarfile
with tarfile.open(sys.argv[1], 'r:*') as archive:
    members = [{'name': m.name, 'size': m.size, 'offset_data': m.offset_data, 'file': m.isfile()} for m in archive]
    archive.extractall(sys.argv[2], filter='data')
print(json.dumps(members))
`

let downloads = 0
async function download(key: string): Promise<string> {
  const path = join(dir, `download-${downloads++}`)
  writeFileSync(path, await getBytes(key))
  return path
}

const MANIFEST = '__manifest__.jsonl'

describe.each([
  { name: 'plain tar, one PUT', compression: null, big: false },
  { name: 'plain tar, multipart', compression: null, big: true },
  { name: 'tar.gz, one PUT', compression: 'gzip', big: false },
  { name: 'tar.gz, multipart', compression: 'gzip', big: true },
] as const)('$name', ({ compression, big }) => {
  const list = specs(big)
  let key: string
  let entry: ShardEntry
  let added: FileEntry[]
  let w: Watched

  beforeAll(async () => {
    w = watched()
    key = s3.key(`shards/${compression ?? 'plain'}-${big ? 'big' : 'small'}.tar${compression ? '.gz' : ''}`)
    ;({ entry, added } = await writeShard(w.ctx, key, list, { compression }))
  })

  it(big ? 'went through one multipart upload, left nothing open' : 'went up in one PUT', async () => {
    if (big) {
      expect(w.counts.CreateMultipartUploadCommand).toBe(1)
      expect(w.counts.UploadPartCommand).toBeGreaterThanOrEqual(2)
      expect(w.counts.PutObjectCommand).toBeUndefined()
      expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
    } else {
      expect(w.counts).toEqual({ PutObjectCommand: 1 })
    }
  })

  it('returns the ShardEntry as Python writes it, with the real size and ETag', async () => {
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
    expect(entry).toStrictEqual({
      kind: 'shard',
      archive_key: key,
      format: 'tar',
      compression,
      internal_manifest_path: MANIFEST,
      count: list.length,
      size_bytes: head.ContentLength,
      meta: { etag: head.ETag?.replace(/"/g, '') },
    })
    expect(Object.keys(entry)).toEqual([
      'kind',
      'archive_key',
      'format',
      'compression',
      'internal_manifest_path',
      'count',
      'size_bytes',
      'meta',
    ])
    expect(typeof entry.meta?.etag).toBe('string')
  })

  it('add() returned each member entry, in Python field order', () => {
    expect(added).toStrictEqual(
      list.map((spec) => ({
        kind: 'file',
        key: `${key}#${spec.path}`,
        member_path: spec.path,
        id: spec.id ?? null,
        meta: spec.meta ?? null,
        size_bytes: spec.data.byteLength,
        sha256: sha256(spec.data),
      })),
    )
  })

  it('the internal manifest is the first member; its lines are Python field order plus sha256 and offset, ASCII only', async () => {
    const members = await tarMembers(await tarOf(key))
    expect(members.map((m) => m.name)).toEqual([MANIFEST, ...list.map((spec) => spec.path)])
    const text = members[0]?.data.toString('utf8') as string
    expect(text.endsWith('\n')).toBe(true)
    const lines = text.slice(0, -1).split('\n')
    expect(lines).toHaveLength(list.length)
    for (const [i, line] of lines.entries()) {
      const spec = list[i] as Spec
      const parsed = JSON.parse(line)
      // gzip shards are seekable by default: each entry also says where its compressed segment is.
      const located = compression === 'gzip' ? ['gz_offset', 'gz_size'] : []
      expect(Object.keys(parsed)).toEqual(['kind', 'key', 'member_path', 'id', 'meta', 'size_bytes', 'sha256', 'offset', ...located])
      expect(parsed).toEqual({
        kind: 'file',
        key: `${key}#${spec.path}`,
        member_path: spec.path,
        id: spec.id ?? null,
        meta: spec.meta ?? null,
        size_bytes: spec.data.byteLength,
        sha256: sha256(spec.data),
        offset: members[i + 1]?.dataOffset,
        ...(compression === 'gzip' ? { gz_offset: expect.any(Number), gz_size: expect.any(Number) } : {}),
      })
      expect(line).toBe(serializeEntry(parsed))
      expect(/^[\x20-\x7e]*$/.test(line)).toBe(true)
    }
  })

  it.runIf(compression === 'gzip')(
    'seekable: each member segment (gz_offset, gz_size) inflates on its own to whole members, this one among them',
    async () => {
      const members = await tarMembers(await tarOf(key))
      const lines = (members[0] as { data: Buffer }).data.toString('utf8').trim().split('\n')
      for (const [i, line] of lines.entries()) {
        const { gz_offset: start, gz_size: size, member_path: path } = JSON.parse(line)
        const range = await s3.client.send(
          new GetObjectCommand({ Bucket: s3.bucket, Key: key, Range: `bytes=${start}-${start + size - 1}` }),
        )
        const segment = inflateRawSync(Buffer.from(await (range.Body as NonNullable<typeof range.Body>).transformToByteArray()), {
          finishFlush: constants.Z_SYNC_FLUSH,
        })
        // The segment is whole members (small ones are grouped): a little tar that holds this one.
        const inSegment = await tarMembers(segment)
        const found = inSegment.find((member) => member.name === path)
        expect(found?.data.equals((list[i] as Spec).data)).toBe(true)
      }
    },
  )

  it('round trips through readShardMembers: entries in order, bytes equal', async () => {
    const read: { entry: FileEntry; data: Buffer }[] = []
    for await (const { entry: member, body } of readShardMembers({ client: s3.client, bucket: s3.bucket }, entry)) {
      read.push({ entry: member, data: Buffer.from(await body.bytes()) })
    }
    expect(read).toHaveLength(list.length)
    for (const [i, { entry: member, data }] of read.entries()) {
      const spec = list[i] as Spec
      expect(member).toMatchObject({
        kind: 'file',
        key: `${key}#${spec.path}`,
        member_path: spec.path,
        id: spec.id ?? null,
        meta: spec.meta ?? null,
        size_bytes: spec.data.byteLength,
        archive_key: key,
      })
      expect(data.equals(spec.data), spec.path).toBe(true)
    }
  })

  it('every offset points at its member data in the uncompressed tar', async () => {
    const tar = await tarOf(key)
    const [manifest] = await tarMembers(tar)
    const internal = (manifest as { data: Buffer }).data
      .toString('utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as FileEntry)
    for (const [i, member] of internal.entries()) {
      const spec = list[i] as Spec
      expect((member.offset as number) % 512, spec.path).toBe(0)
      expect(tar.subarray(member.offset as number, (member.offset as number) + spec.data.byteLength).equals(spec.data), spec.path).toBe(
        true,
      )
    }
  })

  if (compression === null) {
    it('every member is one ranged GET of [offset, offset + size_bytes) of the archive object', async () => {
      const tar = await tarOf(key)
      const internal = (await tarMembers(tar))[0]?.data.toString('utf8').trim().split('\n') as string[]
      let ranged = 0
      for (const [i, line] of internal.entries()) {
        const { offset, size_bytes: size } = JSON.parse(line) as { offset: number; size_bytes: number }
        const spec = list[i] as Spec
        if (size === 0) {
          expect(offset).toBeLessThanOrEqual(entry.size_bytes as number)
          continue
        }
        const bytes = await getBytes(key, `bytes=${offset}-${offset + size - 1}`)
        expect(bytes.equals(spec.data), spec.path).toBe(true)
        ranged++
      }
      expect(ranged).toBe(list.filter((spec) => spec.data.byteLength > 0).length)
    })
  }

  it("Python's tarfile lists the same members at the same offsets and extracts the same bytes", async () => {
    const path = await download(key)
    const out = join(dir, `python-${downloads}`)
    mkdirSync(out)
    const members = JSON.parse(execFileSync('python3', ['-c', PYTHON_EXTRACT, path, out], { encoding: 'utf8' })) as {
      name: string
      size: number
      offset_data: number
      file: boolean
    }[]
    expect(members.map((m) => m.name)).toEqual([MANIFEST, ...list.map((spec) => spec.path)])
    expect(members.every((m) => m.file)).toBe(true)
    const internal = readFileSync(join(out, MANIFEST), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as FileEntry)
    for (const [i, spec] of list.entries()) {
      expect(members[i + 1]?.size).toBe(spec.data.byteLength)
      expect(members[i + 1]?.offset_data).toBe(internal[i]?.offset)
      expect(readFileSync(join(out, spec.path)).equals(spec.data), spec.path).toBe(true)
    }
  })

  it('GNU tar lists the same members', async () => {
    const path = await download(key)
    const script = compression ? 'gzip -dc "$1" | tar --quoting-style=literal -tf -' : 'tar --quoting-style=literal -tf "$1"'
    const names = execFileSync('sh', ['-c', script, 'sh', path], { encoding: 'utf8', env: LOCALE }).split('\n').slice(0, -1)
    expect(names).toEqual([MANIFEST, ...list.map((spec) => spec.path)])
  })
})

describe('options', () => {
  it('a custom internal manifest path is the first member and is named in the ShardEntry', async () => {
    const ctx = { client: s3.client, bucket: s3.bucket }
    const key = s3.key('options/custom.tar')
    const writer = new ShardWriter(ctx, key, { compression: null, internalManifestPath: 'meta/index.jsonl' })
    await writer.add({ source: Buffer.from('a'), member_path: 'a' })
    await expect(writer.add({ source: Buffer.from('b'), member_path: 'meta/index.jsonl' })).rejects.toBeInstanceOf(ShardWriteError)
    const entry = await writer.finish()
    expect(entry.internal_manifest_path).toBe('meta/index.jsonl')
    expect((await tarMembers(await tarOf(key))).map((m) => m.name)).toEqual(['meta/index.jsonl', 'a'])
    const read = []
    for await (const { entry: member, body } of readShardMembers(ctx, entry)) read.push([member.member_path, await body.text()])
    expect(read).toEqual([['a', 'a']])
  })

  it('an empty shard is an archive with only its internal manifest', async () => {
    const ctx = { client: s3.client, bucket: s3.bucket }
    const key = s3.key('options/empty.tar.gz')
    const entry = await new ShardWriter(ctx, key).finish()
    expect(entry).toMatchObject({ compression: 'gzip', count: 0 })
    const members = await tarMembers(await tarOf(key))
    expect(members.map((m) => m.name)).toEqual([MANIFEST])
    const read = []
    for await (const member of readShardMembers(ctx, entry)) read.push(member)
    expect(read).toEqual([])
  })

  it('compression defaults to gzip', async () => {
    const key = s3.key('options/default.tar.gz')
    const writer = new ShardWriter({ client: s3.client, bucket: s3.bucket }, key)
    expect(writer.compression).toBe('gzip')
    await writer.add({ source: Buffer.from('a'), member_path: 'a' })
    const entry = await writer.finish()
    expect(entry.compression).toBe('gzip')
    expect((await getBytes(key)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
  })
})

describe('bad items', () => {
  it.each([
    ['', /empty/],
    ['/abs/path', /absolute/],
    ['C:\\win\\path', /absolute/],
    ['a/../b', /'\.\.'/],
    ['..', /'\.\.'/],
    ['dir/', /directory/],
    ['nul\u0000byte', /NUL/],
  ])('member path %j is refused with ShardWriteError naming archive and member; nothing is written for it', async (path, reason) => {
    const w = watched()
    const key = s3.key(`bad/path-${randomBytes(4).toString('hex')}.tar`)
    const writer = new ShardWriter(w.ctx, key, { compression: null })
    const error = await rejection(writer.add({ source: Buffer.from('bad'), member_path: path }))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ archiveKey: key, memberPath: path })
    expect((error as Error).message).toContain(key)
    expect((error as Error).message).toMatch(reason)
    expect(writer.count).toBe(0)
    // The writer is still usable, and the refused item left no trace.
    await writer.add({ source: Buffer.from('good'), member_path: 'ok.txt' })
    const entry = await writer.finish()
    expect(entry.count).toBe(1)
    const members = await tarMembers(await tarOf(key))
    expect(members.map((m) => m.name)).toEqual([MANIFEST, 'ok.txt'])
    expect(members[0]?.data.toString().trim().split('\n')).toHaveLength(1)
    expect(w.counts).toEqual({ PutObjectCommand: 1 })
  })

  it('a duplicate member path is ShardWriteError; the first member is kept', async () => {
    const key = s3.key('bad/duplicate.tar')
    const writer = new ShardWriter({ client: s3.client, bucket: s3.bucket }, key, { compression: null })
    await writer.add({ source: Buffer.from('first'), member_path: 'same.txt' })
    const error = await rejection(writer.add({ source: Buffer.from('second'), member_path: 'same.txt' }))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ archiveKey: key, memberPath: 'same.txt' })
    expect((error as Error).message).toMatch(/already in this shard/)
    await writer.add({ source: Buffer.from('other'), member_path: 'other.txt' })
    expect((await writer.finish()).count).toBe(2)
    const members = await tarMembers(await tarOf(key))
    expect(members.map((m) => [m.name, m.data.toString()]).slice(1)).toEqual([
      ['same.txt', 'first'],
      ['other.txt', 'other'],
    ])
  })

  it('bytes whose size_bytes is wrong are ShardWriteError naming the member; the shard goes on', async () => {
    const key = s3.key('bad/size.tar')
    const writer = new ShardWriter({ client: s3.client, bucket: s3.bucket }, key, { compression: null })
    const error = await rejection(writer.add({ source: Buffer.from('abc'), member_path: 'abc.txt', size_bytes: 4 }))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ archiveKey: key, memberPath: 'abc.txt' })
    expect((error as Error).message).toMatch(/size_bytes is 4/)
    await writer.add({ source: Buffer.from('abc'), member_path: 'abc.txt', size_bytes: 3 })
    expect((await writer.finish()).count).toBe(1)
  })

  it('a missing file is ShardWriteError naming the member', async () => {
    const key = s3.key('bad/missing-file.tar')
    const writer = new ShardWriter({ client: s3.client, bucket: s3.bucket }, key)
    const error = await rejection(writer.add({ source: join(dir, 'no-such-file'), member_path: 'f.bin' }))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ archiveKey: key, memberPath: 'f.bin' })
    await writer.abort()
    expect(await exists(key)).toBe(false)
  })
})

describe('a source that fails while being written', () => {
  it.each([null, 'gzip'] as const)(
    'compression %s: the add rejects, the shard is aborted: no object, no open multipart upload',
    async (compression) => {
      const w = watched()
      const key = s3.key(`failing/${compression ?? 'plain'}.tar${compression ? '.gz' : ''}`)
      const writer = new ShardWriter(w.ctx, key, { compression, partSize: PART })
      await writer.add({ source: Buffer.from('fine'), member_path: 'fine.txt' })
      async function* breaking() {
        for (let i = 0; i < 11; i++) yield randomBytes(MiB)
        throw new Error('the source broke')
      }
      await expect(writer.add({ source: breaking(), member_path: 'broken.bin', size_bytes: 12 * MiB })).rejects.toThrow('the source broke')
      // Parts had been uploaded: a multipart upload was open, and was aborted.
      expect(w.started).toHaveLength(1)
      expect(w.counts.UploadPartCommand).toBeGreaterThanOrEqual(1)
      expect(w.counts.AbortMultipartUploadCommand).toBe(1)
      expect(w.counts.CompleteMultipartUploadCommand).toBeUndefined()
      expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
      expect(await exists(key)).toBe(false)
      // The writer is done for.
      await expect(writer.add({ source: Buffer.from('x'), member_path: 'x' })).rejects.toBeInstanceOf(ShardWriteError)
      await expect(writer.finish()).rejects.toBeInstanceOf(ShardWriteError)
      expect(await exists(key)).toBe(false)
    },
  )

  it('a stream shorter than its size_bytes is ShardWriteError naming the member, and aborts the shard', async () => {
    const w = watched()
    const key = s3.key('failing/short.tar')
    const writer = new ShardWriter(w.ctx, key, { compression: null })
    await writer.add({ source: Buffer.from('fine'), member_path: 'fine.txt' })
    const error = await rejection(writer.add({ source: chunks(Buffer.alloc(100), 10), member_path: 'short.bin', size_bytes: 101 }))
    expect(error).toBeInstanceOf(ShardWriteError)
    expect(error).toMatchObject({ archiveKey: key, memberPath: 'short.bin' })
    expect((error as Error).message).toMatch(/100 bytes but size_bytes is 101/)
    await expect(writer.finish()).rejects.toBeInstanceOf(ShardWriteError)
    expect(await exists(key)).toBe(false)
    expect(w.counts).toEqual({})
  })

  it('abort() before finish leaves nothing', async () => {
    const w = watched()
    const key = s3.key('failing/aborted.tar')
    const writer = new ShardWriter(w.ctx, key, { compression: null, partSize: PART })
    await writer.add({ source: randomBytes(2 * PART + 1), member_path: 'big.bin' })
    await writer.abort()
    expect(await pendingMultipartUploads(s3.client, s3.bucket, w.started, { prefix: s3.prefix })).toEqual([])
    expect(await exists(key)).toBe(false)
  })
})
