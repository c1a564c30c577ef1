/**
 * zstd shards (`.tar.zst`) against a real (local) S3: the layout `ShardWriter` writes (the
 * manifest's frame first, padded by a skippable frame to where the member frames start, a frame
 * per member group, `zst_offset` / `zst_size` counted from the start of the object), read back
 * streamed and by ranged GETs; `zstd -t` and GNU `tar --zstd` read it; a corrupt frame is a
 * `ShardReadError` naming the member, never wrong bytes; `seekable: false`; archives of many
 * frames written by others (Node alone would drop all but the first frame); and a Node without
 * zstd, played through the lazy lookup seam: a typed error naming the archive, nothing uploaded.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import {
  buildTar,
  countRequests,
  internalManifestFor,
  type ProxiedRequest,
  rejection,
  requireTool,
  startS3Proxy,
} from '@s3exchange/testing'
import { useS3Proxy, useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileEntry, ShardEntry } from '../format/entries.js'
import { ShardReadError, ShardWriteError, UnsupportedCompressionError } from '../format/errors.js'
import { LruCache } from '../format/lru-cache.js'
import type { S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import type { ArchiveIndex } from './archive-index.js'
import { openArchiveMember } from './random-access.js'
import { readInternalManifest, readShardMembers } from './scan-archive.js'
import { ShardWriter, type ShardWriterOptions } from './shard-writer.js'
import { zstdLookup } from './zstd-codec.js'
import { PADDING_MAGIC, SKIPPABLE_HEADER_BYTES, ZSTD_MAGIC, ZstdFrameSplitter } from './zstd-frames.js'

const s3 = useTestS3()
const via = useS3Proxy(s3)
const KiB = 1024
const MiB = 1024 * KiB
const ZSTD = { install: 'apt-get install zstd' }
const dir = mkdtempSync(join(tmpdir(), 's3x-zstd-'))
/** Through the proxy: every request shows in `via.proxy.requests`. */
const proxied = (): S3Context => ({ client: via.client, bucket: s3.bucket })
/** Straight to the server: for setting up and checking. */
const server = (): S3Context => ({ client: s3.client, bucket: s3.bucket })

afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Spec {
  path: string
  data: Buffer
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** Small text members (grouped into shared frames), one of 700 KiB of random bytes (a frame of its own, raw blocks), one of 6 MiB (multipart). */
function specs(): Spec[] {
  return [
    ...Array.from({ length: 30 }, (_, i) => ({ path: `small/${i}.txt`, data: Buffer.from(`small member ${i} `.repeat(40 + i * 20)) })),
    { path: 'random/700k.bin', data: randomBytes(700 * KiB) },
    { path: 'dïr/ünïcødé 🎧.txt', data: Buffer.from('ünï') },
    { path: 'empty', data: Buffer.alloc(0) },
    { path: 'big/six-mib.bin', data: Buffer.concat([randomBytes(MiB), Buffer.alloc(5 * MiB, 7)]) },
    { path: `long/${'l'.repeat(120)}/tail.txt`, data: Buffer.from('tail') },
  ]
}

async function writeShard(key: string, list: Spec[], options: ShardWriterOptions = {}): Promise<ShardEntry> {
  const writer = new ShardWriter(server(), key, { partSize: 5 * MiB, ...options })
  for (const spec of list) await writer.add({ source: spec.data, member_path: spec.path })
  return writer.finish()
}

async function download(key: string): Promise<Buffer> {
  return Buffer.from(await (await getObjectBody(server(), key)).bytes())
}

async function put(key: string, body: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

function getsSince(mark: number): ProxiedRequest[] {
  return via.proxy.requests.slice(mark).filter((request) => request.method === 'GET')
}

async function streamed(shard: ShardEntry): Promise<string[][]> {
  const out: string[][] = []
  for await (const { entry, body } of readShardMembers(server(), shard)) out.push([entry.member_path as string, sha(await body.bytes())])
  return out
}

describe('the seekable .tar.zst ShardWriter writes', () => {
  const list = specs()
  const key = () => s3.key('layout/shard.tar.zst')
  let shard: ShardEntry
  let listed: FileEntry[]
  let bytes: Buffer

  beforeAll(async () => {
    shard = await writeShard(key(), list, { compression: 'zstd' })
    listed = await readInternalManifest(server(), shard)
    bytes = await download(key())
  })

  it('is a shard entry with compression "zstd", as big as the object', () => {
    expect(shard).toEqual({
      kind: 'shard',
      archive_key: key(),
      format: 'tar',
      compression: 'zstd',
      internal_manifest_path: '__manifest__.jsonl',
      count: list.length,
      size_bytes: bytes.byteLength,
      meta: { etag: expect.any(String) },
    })
  })

  it('starts with the manifest frame and a padding frame that ends where the first member frame starts', () => {
    expect(bytes.readUInt32LE(0)).toBe(ZSTD_MAGIC)
    const first = listed[0]?.zst_offset as number
    // The manifest's frame, alone: where the splitter sees its end, the padding frame begins.
    const splitter = new ZstdFrameSplitter()
    let headEnd = 0
    for (let at = 1; at <= first && headEnd === 0; at++) {
      splitter.push(bytes.subarray(at - 1, at))
      if (splitter.frames === 1) headEnd = at
    }
    expect(bytes.readUInt32LE(headEnd)).toBe(PADDING_MAGIC)
    expect(headEnd + SKIPPABLE_HEADER_BYTES + bytes.readUInt32LE(headEnd + 4)).toBe(first)
    expect(bytes.readUInt32LE(first)).toBe(ZSTD_MAGIC)
  })

  it('records zst_offset and zst_size for every member: frames back to back, small members sharing, large ones alone', () => {
    for (const [i, entry] of listed.entries()) {
      expect(entry.member_path).toBe(list[i]?.path)
      expect(entry.zst_offset).toEqual(expect.any(Number))
      expect(entry.zst_size).toEqual(expect.any(Number))
      expect(entry.gz_offset).toBeUndefined()
      expect(bytes.readUInt32LE(entry.zst_offset as number), entry.member_path).toBe(ZSTD_MAGIC)
    }
    for (let i = 1; i < listed.length; i++) {
      const [before, entry] = [listed[i - 1] as FileEntry, listed[i] as FileEntry]
      if (entry.zst_offset === before.zst_offset) expect(entry.zst_size).toBe(before.zst_size)
      else expect(entry.zst_offset).toBe((before.zst_offset as number) + (before.zst_size as number))
    }
    const frames = new Set(listed.map((entry) => entry.zst_offset))
    expect(frames.size).toBeGreaterThan(3)
    expect(frames.size).toBeLessThan(listed.length)
    for (const path of ['random/700k.bin', 'big/six-mib.bin']) {
      const own = listed.find((entry) => entry.member_path === path) as FileEntry
      expect(listed.filter((entry) => entry.zst_offset === own.zst_offset)).toEqual([own])
      // Streamed into its frame, and still exactly one frame.
      const splitter = new ZstdFrameSplitter()
      splitter.push(bytes.subarray(own.zst_offset as number, (own.zst_offset as number) + (own.zst_size as number)))
      expect([splitter.frames, splitter.finish()], path).toEqual([1, true])
    }
    // Then one more frame, the tar's end, and nothing after it.
    const last = listed.at(-1) as FileEntry
    const splitter = new ZstdFrameSplitter()
    splitter.push(bytes.subarray((last.zst_offset as number) + (last.zst_size as number)))
    expect([splitter.frames, splitter.finish()]).toEqual([1, true])
  })

  it('each frame decompresses alone to whole tar members', () => {
    requireTool('zstd', ZSTD)
    const own = listed.find((entry) => entry.member_path === 'small/3.txt') as FileEntry
    const frame = bytes.subarray(own.zst_offset as number, (own.zst_offset as number) + (own.zst_size as number))
    const tar = execFileSync('zstd', ['-d', '-c', '-q'], { input: frame })
    expect(tar.byteLength % 512).toBe(0)
    const names = execFileSync('tar', ['-tf', '-'], { input: tar, encoding: 'utf8' }).trim().split('\n')
    expect(names).toContain('small/3.txt')
  })

  it('reads back streamed, byte for byte, and zstd -t finds it sound', async () => {
    requireTool('zstd', ZSTD)
    expect(await streamed(shard)).toEqual(list.map((spec) => [spec.path, sha(spec.data)]))
    const file = join(dir, 'layout.tar.zst')
    writeFileSync(file, bytes)
    execFileSync('zstd', ['-t', '-q', file])
  })

  it('one member by path = one ranged GET of its frame once the index is cached', async () => {
    const cache = new LruCache<ArchiveIndex>(2)
    await (await openArchiveMember(proxied(), key(), 'empty', { indexCache: cache }))?.bytes()
    for (const spec of [...list].reverse()) {
      const mark = via.proxy.requests.length
      const body = await openArchiveMember(proxied(), key(), spec.path, { indexCache: cache })
      expect(Buffer.from(await (body as NonNullable<typeof body>).bytes()).equals(spec.data), spec.path).toBe(true)
      const gets = getsSince(mark)
      expect(gets, spec.path).toHaveLength(1)
      const entry = listed.find((e) => e.member_path === spec.path) as FileEntry
      expect(gets[0]?.headers.range).toBe(`bytes=${entry.zst_offset}-${(entry.zst_offset as number) + (entry.zst_size as number) - 1}`)
      expect(gets[0]?.headers['if-match']).toBe(`"${shard.meta?.etag}"`)
    }
  })
})

describe('a corrupt frame', () => {
  const list = specs()
  let listed: FileEntry[]
  let good: Buffer

  beforeAll(async () => {
    const shard = await writeShard(s3.key('corrupt/good.tar.zst'), list, { compression: 'zstd' })
    listed = await readInternalManifest(server(), shard)
    good = await download(shard.archive_key)
  })

  /** The archive with one byte flipped `into` bytes into the frame of `path`; its key. */
  async function corrupted(name: string, path: string, into: (frameSize: number) => number): Promise<string> {
    const entry = listed.find((e) => e.member_path === path) as FileEntry
    const bytes = Buffer.from(good)
    const at = (entry.zst_offset as number) + into(entry.zst_size as number)
    bytes[at] = (bytes[at] as number) ^ 0x40
    const key = s3.key(`corrupt/${name}.tar.zst`)
    await put(key, bytes)
    return key
  }

  it('in the data of a member alone in its frame (raw blocks: only the checksum can tell): read by path, a ShardReadError naming it', async () => {
    const path = 'random/700k.bin'
    const key = await corrupted('raw-block', path, (size) => Math.floor(size / 2))
    const cache = new LruCache<ArchiveIndex>(2)
    const error = await rejection(openArchiveMember(proxied(), key, path, { indexCache: cache }).then((body) => body?.bytes()))
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).archiveKey).toBe(key)
    expect((error as ShardReadError).memberPath).toBe(path)
    expect((error as ShardReadError).message).toMatch(/corrupt zstd stream .*checksum/)
    // The other frames are sound: their members read, each with its own ranged GET.
    for (const spec of list.filter((s) => s.path !== path)) {
      const body = await openArchiveMember(proxied(), key, spec.path, { indexCache: new LruCache(2) })
      expect(Buffer.from(await (body as NonNullable<typeof body>).bytes()).equals(spec.data), spec.path).toBe(true)
    }
  })

  it('in a member that ends before its frame does, the frame arriving in slices: the body fails, never hands out its wrong bytes', async () => {
    // A frame of three grouped members in several zstd blocks (a block holds at most 128 KiB):
    // the middle one ends in the first block, whose output is decoded and handed on before the
    // rest of the frame and its checksum have even arrived (the proxy lets the body through in
    // slices). Its random bytes are stored as they are, so a flipped byte is found by no decoder,
    // only by the frame's checksum, at the end.
    const group = [
      { path: 'g/text.txt', data: Buffer.from('some text '.repeat(2000)) },
      { path: 'g/random-40k.bin', data: randomBytes(40 * KiB) },
      { path: 'g/random-150k.bin', data: randomBytes(150 * KiB) },
    ]
    const shard = await writeShard(s3.key('corrupt/sliced-good.tar.zst'), group, { compression: 'zstd' })
    const entries = await readInternalManifest(server(), shard)
    expect(new Set(entries.map((entry) => entry.zst_offset)).size).toBe(1)
    const bytes = await download(shard.archive_key)
    const target = group[1] as Spec
    const at = bytes.indexOf(target.data.subarray(20_000, 20_064))
    expect(at).toBeGreaterThan(entries[0]?.zst_offset as number)
    bytes[at + 10] = (bytes[at + 10] as number) ^ 0x01
    const key = s3.key('corrupt/sliced.tar.zst')
    await put(key, bytes)

    const slow = await startS3Proxy({ target: s3.s3.endpoint, bytesPerSecondPerConnection: 4e6 })
    const slowClient = s3.s3.createClient({ endpoint: slow.endpoint })
    try {
      const body = await openArchiveMember({ client: slowClient, bucket: s3.bucket }, key, target.path, { indexCache: new LruCache(2) })
      const error = await rejection((body as NonNullable<typeof body>).bytes())
      expect(error).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).memberPath).toBe(target.path)
      expect((error as ShardReadError).message).toMatch(/checksum/)
      // The frame (about 210 KB) did arrive in many slices.
      const ranged = slow.requests.find((request) => request.method === 'GET' && request.headers.range !== 'bytes=0-65535')
      const connection = slow.connections.find((c) => c.id === ranged?.connection)
      expect(connection?.response.length).toBeGreaterThan(5)
    } finally {
      slowClient.destroy()
      await slow.stop()
    }
  })

  it('streamed: the iteration fails with a ShardReadError at that frame, no member after it is yielded', async () => {
    const path = 'random/700k.bin'
    const key = await corrupted('raw-block-streamed', path, (size) => Math.floor(size / 2))
    const seen: string[] = []
    const error = await rejection(
      (async () => {
        for await (const { entry, body } of readShardMembers(server(), { kind: 'shard', archive_key: key })) {
          await body.bytes()
          seen.push(entry.member_path as string)
        }
      })(),
    )
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as ShardReadError).message).toMatch(/corrupt zstd stream/)
    const index = list.findIndex((spec) => spec.path === path)
    expect(seen.length).toBeLessThanOrEqual(index + 1)
    expect(seen).toEqual(list.slice(0, seen.length).map((spec) => spec.path))
  })

  it('in a frame of grouped small members: each of them fails with a ShardReadError, never wrong bytes', async () => {
    const path = 'small/12.txt'
    const key = await corrupted('grouped', path, (size) => Math.floor(size / 2))
    const own = listed.find((e) => e.member_path === path) as FileEntry
    const group = listed.filter((e) => e.zst_offset === own.zst_offset)
    expect(group.length).toBeGreaterThan(1)
    for (const entry of group) {
      const error = await rejection(
        openArchiveMember(proxied(), key, entry.member_path as string, { indexCache: new LruCache(2) }).then((body) => body?.bytes()),
      )
      expect(error, entry.member_path).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).archiveKey).toBe(key)
      expect((error as ShardReadError).memberPath).toBe(entry.member_path)
    }
  })
})

describe('seekable: false', () => {
  it('writes the members as one frame after the manifest frame, no zst_offset; members read streamed', async () => {
    requireTool('zstd', ZSTD)
    const list = specs().slice(0, 12)
    const key = s3.key('continuous/shard.tar.zst')
    const shard = await writeShard(key, list, { compression: 'zstd', seekable: false })
    const listed = await readInternalManifest(server(), shard)
    for (const entry of listed) expect(entry.zst_offset).toBeUndefined()
    const bytes = await download(key)
    const splitter = new ZstdFrameSplitter()
    splitter.push(bytes)
    expect([splitter.frames, splitter.finish()]).toEqual([2, true])
    expect(await streamed(shard)).toEqual(list.map((spec) => [spec.path, sha(spec.data)]))
    const file = join(dir, 'continuous.tar.zst')
    writeFileSync(file, bytes)
    execFileSync('zstd', ['-t', '-q', file])
    // A member: the head, then the archive streamed up to it.
    const mark = via.proxy.requests.length
    const body = await openArchiveMember(proxied(), key, 'small/5.txt', { indexCache: new LruCache(2) })
    expect(Buffer.from(await (body as NonNullable<typeof body>).bytes()).equals(list[5]?.data as Buffer)).toBe(true)
    expect(getsSince(mark).map((request) => request.headers.range)).toEqual(['bytes=0-65535'])
  })
})

describe('size', () => {
  it('on many small members: seekable costs some size against one frame, within a sane factor; both beat seekable gzip', async () => {
    // 500 small, compressible members (JSON-ish text sharing most of its words with its neighbours), as for gzip.
    const members = Array.from({ length: 500 }, (_, i) => ({
      path: `samples/${String(i).padStart(4, '0')}.json`,
      data: Buffer.from(
        JSON.stringify({ id: i, label: ['cat', 'dog', 'bird'][i % 3], text: `sample number ${i} of the dataset `.repeat(8) }),
      ),
    }))
    const sizes: Record<string, number> = {}
    for (const [name, options] of [
      ['zstd seekable', { compression: 'zstd' }],
      ['zstd one frame', { compression: 'zstd', seekable: false }],
      ['gzip seekable', { compression: 'gzip' }],
    ] as const) {
      const writer = new ShardWriter(server(), s3.key(`size/${name.replace(' ', '-')}`), options)
      for (const member of members) await writer.add({ source: member.data, member_path: member.path })
      sizes[name] = (await writer.finish()).size_bytes as number
    }
    // Observed: 33.8 KB seekable, 31.4 KB as one frame (1.08), 37.7 KB as seekable gzip (the
    // internal manifest, with a sha256 per member, is much of each).
    const { 'zstd seekable': seekable = 0, 'zstd one frame': continuous = 0, 'gzip seekable': gzip = 0 } = sizes
    expect(seekable).toBeGreaterThan(continuous)
    expect(seekable).toBeLessThan(continuous * 1.5)
    expect(seekable).toBeLessThan(gzip)
  })
})

describe('.tar.zst written by others', () => {
  it('many frames cut anywhere (zstd run on pieces, concatenated): every member, streamed and by path', async () => {
    requireTool('zstd', ZSTD)
    const members = Array.from({ length: 20 }, (_, i) => ({ name: `m/${i}.bin`, data: randomBytes(3000 + i * 1111) }))
    const key = s3.key('others/many-frames.tar.zst')
    const tar = await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(key, members) }, ...members])
    // Frames cut at arbitrary points, mid-header and mid-data, each compressed by the zstd tool, a skippable frame between two.
    const cuts = [0, 700, 5000, 5001, 23_456, 40_000, tar.byteLength]
    const frames = cuts.slice(1).map((end, i) => execFileSync('zstd', ['-c', '-q'], { input: tar.subarray(cuts[i], end) }))
    const skippable = Buffer.alloc(12)
    skippable.writeUInt32LE(0x184d2a5a, 0)
    skippable.writeUInt32LE(4, 4)
    await put(key, Buffer.concat([...frames.slice(0, 2), skippable, ...frames.slice(2)]))
    const shard: ShardEntry = { kind: 'shard', archive_key: key, compression: 'zstd' }
    expect(await streamed(shard)).toEqual(members.map((member) => [member.name, sha(member.data)]))
    const last = members.at(-1) as { name: string; data: Buffer }
    const body = await openArchiveMember(proxied(), key, last.name, { indexCache: new LruCache(2) })
    expect(Buffer.from(await (body as NonNullable<typeof body>).bytes()).equals(last.data)).toBe(true)
  })

  it('truncated inside a frame, or followed by bytes that are not a frame: a ShardReadError that says so', async () => {
    const members = [{ name: 'a.txt', data: 'a'.repeat(5000) }]
    const tar = await buildTar(members)
    const frame = execFileSyncZstd(tar)
    for (const [name, bytes, message] of [
      ['truncated', frame.subarray(0, frame.byteLength - 3), /truncated zstd stream/],
      ['garbage', Buffer.concat([frame, Buffer.from('garbage!')]), /corrupt zstd stream \(no zstd frame starts at byte \d+\)/],
    ] as const) {
      const key = s3.key(`others/${name}.tar.zst`)
      await put(key, bytes)
      const error = await rejection(streamed({ kind: 'shard', archive_key: key }))
      expect(error, name).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).message, name).toMatch(message)
    }
  })
})

/** One zstd frame of `input`, made by the zstd tool. */
function execFileSyncZstd(input: Uint8Array): Buffer {
  requireTool('zstd', ZSTD)
  return execFileSync('zstd', ['-c', '-q'], { input })
}

describe('a Node without zstd (before 22.15), played through the lookup seam', () => {
  async function withoutZstd<T>(run: () => Promise<T>): Promise<T> {
    const real = zstdLookup.zlib
    zstdLookup.zlib = {}
    try {
      return await run()
    } finally {
      zstdLookup.zlib = real
    }
  }

  it('writing: a ShardWriteError naming the archive and the Node needed, before any request', async () => {
    const watchedClient = s3.s3.createClient()
    const counts = countRequests(watchedClient)
    try {
      const key = s3.key('no-zstd/shard.tar.zst')
      const error = await withoutZstd(async () => {
        try {
          new ShardWriter({ client: watchedClient, bucket: s3.bucket }, key)
        } catch (thrown) {
          return thrown
        }
        return undefined
      })
      expect(error).toBeInstanceOf(ShardWriteError)
      expect((error as ShardWriteError).archiveKey).toBe(key)
      expect((error as ShardWriteError).message).toMatch(/zstd compression needs node:zlib's createZstdCompress \(Node 22\.15 or later\)/)
      expect(counts).toEqual({})
      // gzip and plain shards still write on that Node.
      const gzip = await withoutZstd(() => writeShard(s3.key('no-zstd/shard.tar.gz'), specs().slice(0, 2)))
      expect(gzip.compression).toBe('gzip')
    } finally {
      watchedClient.destroy()
    }
  })

  it('reading: UnsupportedCompressionError naming the archive, streamed and by path', async () => {
    const key = s3.key('no-zstd/readable.tar.zst')
    const shard = await writeShard(key, specs().slice(0, 3), { compression: 'zstd' })
    const stream = await withoutZstd(() => rejection(streamed(shard)))
    expect(stream).toBeInstanceOf(UnsupportedCompressionError)
    expect((stream as UnsupportedCompressionError).archiveKey).toBe(key)
    const one = await withoutZstd(() => rejection(openArchiveMember(proxied(), key, 'small/1.txt', { indexCache: new LruCache(2) })))
    expect(one).toBeInstanceOf(UnsupportedCompressionError)
    expect((one as UnsupportedCompressionError).compression).toBe('zstd')
  })
})

describe('tar --zstd', () => {
  it('GNU tar extracts exactly the members the internal manifest lists, byte for byte', async () => {
    requireTool('zstd', ZSTD)
    const list = specs()
    const key = s3.key('gnu-tar/shard.tar.zst')
    const shard = await writeShard(key, list, { compression: 'zstd' })
    const file = join(dir, 'gnu.tar.zst')
    writeFileSync(file, await download(key))
    const out = mkdtempSync(join(dir, 'x-'))
    execFileSync('tar', ['--zstd', '-xf', file, '-C', out], { env: { ...process.env, LC_ALL: 'C.UTF-8' } })
    const listed = await readInternalManifest(server(), shard)
    for (const [i, entry] of listed.entries()) {
      expect(sha(readFileSync(join(out, entry.member_path as string))), entry.member_path).toBe(sha(list[i]?.data as Buffer))
    }
  })
})
