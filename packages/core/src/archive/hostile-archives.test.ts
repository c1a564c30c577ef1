/**
 * Hostile shard archives, uploaded to the test S3 and read back with the shard readers:
 * members named with `..` or absolute paths (and what a download does with them), symlinks and
 * hard links (skipped, never followed, never returned as content), a gzip bomb (1 GiB of zeros in
 * about 1 MiB: streamed with flat memory, or refused by `maxMemberBytes` before it is read), tar
 * headers that declare more data than the archive holds, internal manifests that list members the
 * archive does not hold, and internal manifests whose `size_bytes` is wrong (`verify: true`).
 */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createGzip, gzipSync } from 'node:zlib'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor, type TarMemberSpec } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileEntry, ShardEntry } from '../format/entries.js'
import {
  IntegrityError,
  LimitExceededError,
  ObjectNotFoundError,
  S3ExchangeError,
  ShardReadError,
  UnsafePathError,
} from '../format/errors.js'
import { LruCache } from '../format/lru-cache.js'
import { safeLocalPath, writeFileAtomically } from '../operators/download.js'
import { expandShards } from '../operators/expand-shards.js'
import type { S3Context } from '../s3/context.js'
import { openArchiveMember } from './random-access.js'
import { readInternalManifest, readShardEntries, readShardMembers, type ShardReadOptions } from './scan-archive.js'
import { TAR_END, tarHeader, tarPadding } from './tar-writer.js'

const s3 = useTestS3()
const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const MANIFEST = '__manifest__.jsonl'

let ctx: S3Context
let scratch: string

beforeAll(async () => {
  ctx = { client: s3.client, bucket: s3.bucket }
  scratch = await mkdtemp(join(tmpdir(), 's3x-hostile-'))
})

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true })
})

async function upload(key: string, bytes: Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }))
}

/** Builds the archive (gzip or plain), uploads it under a fresh key, and returns its shard entry. */
async function uploadArchive(name: string, members: TarMemberSpec[], gzip: boolean): Promise<ShardEntry> {
  const archiveKey = s3.key(`${name}${gzip ? '.tar.gz' : '.tar'}`)
  await upload(archiveKey, await buildTar(members, { gzip }))
  return { kind: 'shard', archive_key: archiveKey, format: 'tar', compression: gzip ? 'gzip' : null }
}

/** The rejection of `run()`; fails the test when it resolves. */
async function rejection(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run()
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

interface Read {
  entry: FileEntry
  data: Buffer
}

/** Every member readShardMembers yields, each body read whole. */
async function readMembers(shard: ShardEntry, options: ShardReadOptions = {}, context: S3Context = ctx): Promise<Read[]> {
  const out: Read[] = []
  for await (const { entry, body } of readShardMembers(context, shard, options)) {
    out.push({ entry, data: Buffer.from(await body.bytes()) })
  }
  return out
}

/** Every path under `dir`, relative, sorted (links listed, not followed). */
async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort()
}

/** A tar header block with the given fields and a valid checksum (for what tar-stream cannot write). */
function rawHeader(fields: { name: string; size: number; type?: string; linkname?: string }): Buffer {
  const header = tarHeader({ name: fields.name, size: fields.size })
  if (header.byteLength !== 512) throw new Error('rawHeader: short ASCII names only')
  if (fields.type) header.write(fields.type, 156, 1, 'ascii')
  if (fields.linkname) header.write(fields.linkname, 157, 100, 'utf8')
  return fixChecksum(header)
}

function fixChecksum(header: Buffer): Buffer {
  header.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += header[i] as number
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii')
  return header
}

/** A regular member: header, data, padding. */
function regular(name: string, data: Uint8Array | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)
  return Buffer.concat([tarHeader({ name, size: bytes.byteLength }), bytes, tarPadding(bytes.byteLength)])
}

describe('members named with .. or an absolute path', () => {
  const hostile = ['../../etc/passwd', '/etc/passwd', 'a/../../b', '../escape.txt']
  const members: TarMemberSpec[] = [{ name: 'ok.txt', data: 'fine' }, ...hostile.map((name, i) => ({ name, data: `hostile ${i}` }))]

  for (const gzip of [false, true]) {
    it(`are yielded under their names as written, and refused by the download helpers (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`dotdot-${gzip}.tar${gzip ? '.gz' : ''}`)
      const archive = await buildTar([{ name: MANIFEST, data: internalManifestFor(archiveKey, members) }, ...members], { gzip })
      await upload(archiveKey, archive)
      const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: gzip ? 'gzip' : null }

      // The reader does not rewrite or drop such names: the virtual key is `archive#<name as written>`.
      const read = await readMembers(shard)
      expect(read.map((r) => r.entry.member_path)).toEqual(['ok.txt', ...hostile])
      expect(read.map((r) => r.entry.key)).toEqual(['ok.txt', ...hostile].map((name) => `${archiveKey}#${name}`))
      expect(read.map((r) => r.data.toString())).toEqual(['fine', ...hostile.map((_, i) => `hostile ${i}`)])

      // A download: the store maps each member to safeLocalPath(root, member_path), then writes it.
      const parent = await mkdtemp(join(scratch, 'dl-'))
      const root = join(parent, 'a', 'b', 'target')
      await mkdir(root, { recursive: true })
      for await (const { entry, body } of readShardMembers(ctx, shard)) {
        const path = entry.member_path as string
        if (path === 'ok.txt') {
          await writeFileAtomically(body, safeLocalPath(root, path, entry.key), { root, key: entry.key })
          continue
        }
        const refused = await rejection(async () => safeLocalPath(root, path, entry.key))
        expect(refused).toBeInstanceOf(UnsafePathError)
        expect((refused as UnsafePathError).key).toBe(entry.key)
        expect((refused as UnsafePathError).path).toBe(path)
        // A caller that skips safeLocalPath and joins the path itself is still stopped by
        // writeFileAtomically's root. An absolute name is re-rooted inside our scratch folder, so
        // that a bug here could never touch the real /etc/passwd.
        const naive = path.startsWith('/') ? join(parent, 'abs', path) : resolve(root, path)
        const unsafe = await rejection(() => writeFileAtomically(body, naive, { root, key: entry.key }))
        expect(unsafe).toBeInstanceOf(UnsafePathError)
        body.destroy()
      }
      // Only ok.txt was written, and nothing outside the target folder (not even a folder).
      expect(await listing(parent)).toEqual(['a', 'a/b', 'a/b/target', 'a/b/target/ok.txt'])
      expect(readFileSync(join(root, 'ok.txt'), 'utf8')).toBe('fine')
    })
  }
})

describe('symlinks and hard links', () => {
  const passwd = (() => {
    try {
      return readFileSync('/etc/passwd')
    } catch {
      return Buffer.from('root:x:0:0')
    }
  })()

  /** The manifest lists a.txt (a symlink to /etc/passwd here), c.txt (a hard link to the manifest) and b.txt. */
  function members(archiveKey: string): TarMemberSpec[] {
    const listed = [
      { name: 'a.txt', data: 'listed a' },
      { name: 'b.txt', data: 'bee' },
      { name: 'c.txt', data: 'listed c' },
    ]
    return [
      { name: MANIFEST, data: internalManifestFor(archiveKey, listed) },
      { name: 'a.txt', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'dir', type: 'directory' },
      { name: 'passwd', type: 'symlink', linkname: '../../../../../../etc/passwd' },
      { name: 'b.txt', data: 'bee' },
      { name: 'c.txt', type: 'link', linkname: MANIFEST },
      { name: 'hard-to-manifest', type: 'link', linkname: MANIFEST },
    ]
  }

  for (const gzip of [false, true]) {
    it(`are skipped, never followed, never yielded (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`links-${gzip}.tar${gzip ? '.gz' : ''}`)
      await upload(archiveKey, await buildTar(members(archiveKey), { gzip }))
      const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: gzip ? 'gzip' : null }

      const read = await readMembers(shard)
      expect(read.map((r) => r.entry.member_path)).toEqual(['b.txt'])
      expect(read[0]?.data.toString()).toBe('bee')
      expect(read[0]?.entry).toMatchObject({ key: `${archiveKey}#b.txt`, archive_key: archiveKey, size_bytes: 3 })

      // expandShards (what iterObjects runs) yields the same single member.
      const expanded: string[] = []
      for await (const { entry, body } of expandShards(ctx, { bodies: true })([shard])) {
        expanded.push(`${entry.key}=${await body.text()}`)
      }
      expect(expanded).toEqual([`${archiveKey}#b.txt=bee`])

      // The listing is what the internal manifest says (it only names members, it reads no data).
      const listed = []
      for await (const entry of readShardEntries(ctx, shard)) listed.push(entry.member_path)
      expect(listed).toEqual(['a.txt', 'b.txt', 'c.txt'])

      // One member by name: a link is a typed error, by both paths (cached index or not).
      for (const indexCache of [undefined, new LruCache<never>(4)]) {
        for (const name of ['a.txt', 'passwd', 'c.txt', 'hard-to-manifest']) {
          const error = await rejection(async () => {
            const body = await openArchiveMember(ctx, archiveKey, name, { indexCache })
            return body?.bytes()
          })
          expect(error).toBeInstanceOf(ShardReadError)
          expect((error as ShardReadError).archiveKey).toBe(archiveKey)
          expect((error as ShardReadError).memberPath).toBe(name)
          expect((error as Error).message).toMatch(/not a regular file/)
        }
        const b = await openArchiveMember(ctx, archiveKey, 'b.txt', { indexCache })
        expect(Buffer.from((await b?.bytes()) ?? []).toString()).toBe('bee')
      }
      // Nothing read above is the content of /etc/passwd or of the manifest.
      for (const { data } of read) expect(data.equals(passwd)).toBe(false)
    })
  }

  it('a hard link named like the internal manifest is not taken for it', async () => {
    const archiveKey = s3.key('link-as-manifest.tar')
    const archive = Buffer.concat([
      regular('real.jsonl', '{"kind":"file","key":"x","member_path":"x"}\n'),
      rawHeader({ name: MANIFEST, size: 0, type: '1', linkname: 'real.jsonl' }),
      regular('x', 'data'),
      TAR_END,
    ])
    await upload(archiveKey, archive)
    const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: null }
    const error = await rejection(() => readInternalManifest(ctx, shard))
    expect(error).toBeInstanceOf(ShardReadError)
    expect((error as Error).message).toMatch(/internal manifest '__manifest__.jsonl' not found/)
    expect(await rejection(() => readMembers(shard))).toBeInstanceOf(ShardReadError)
  })
})

describe('a gzip bomb: 1 GiB of zeros as one member, about 1 MiB compressed', () => {
  const SIZE = GiB
  let shard: ShardEntry
  let compressedBytes = 0

  /** tar (manifest, then the zeros) streamed through gzip level 9; only the compressed bytes are held. */
  async function buildBomb(archiveKey: string): Promise<Buffer> {
    const gzip = createGzip({ level: 9 })
    const out: Buffer[] = []
    const collected = (async () => {
      for await (const chunk of gzip) out.push(chunk as Buffer)
    })()
    const write = async (chunk: Uint8Array) => {
      if (!gzip.write(chunk)) await once(gzip, 'drain')
    }
    const manifest = internalManifestFor(archiveKey, [{ name: 'zeros.bin' }]).replace('"size_bytes":0', `"size_bytes":${SIZE}`)
    await write(regular(MANIFEST, manifest))
    await write(tarHeader({ name: 'zeros.bin', size: SIZE }))
    const zeros = Buffer.alloc(MiB)
    for (let written = 0; written < SIZE; written += zeros.byteLength) await write(zeros)
    await write(TAR_END)
    gzip.end()
    await collected
    return Buffer.concat(out)
  }

  beforeAll(async () => {
    const archiveKey = s3.key('bomb.tar.gz')
    const bomb = await buildBomb(archiveKey)
    compressedBytes = bomb.byteLength
    await upload(archiveKey, bomb)
    shard = { kind: 'shard', archive_key: archiveKey, compression: 'gzip' }
  })

  it('streams with flat memory and delivers exactly 1 GiB', async () => {
    expect(compressedBytes).toBeLessThan(2 * MiB)
    const base = process.memoryUsage()
    const peak = { rss: 0, heapUsed: 0, arrayBuffers: 0 }
    const sample = () => {
      const now = process.memoryUsage()
      peak.rss = Math.max(peak.rss, now.rss - base.rss)
      peak.heapUsed = Math.max(peak.heapUsed, now.heapUsed - base.heapUsed)
      peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers - base.arrayBuffers)
    }
    const timer = setInterval(sample, 25)
    let count = 0
    let members = 0
    let nonZero = false
    try {
      for await (const { entry, body } of readShardMembers(ctx, shard)) {
        members++
        expect(entry).toMatchObject({ member_path: 'zeros.bin', size_bytes: SIZE })
        let chunks = 0
        for await (const chunk of body) {
          const bytes = chunk as Buffer
          count += bytes.byteLength
          // Spot-check the content without scanning 1 GiB: first and last byte of every chunk.
          if (bytes[0] !== 0 || bytes[bytes.byteLength - 1] !== 0) nonZero = true
          if (++chunks % 256 === 0) sample()
        }
      }
    } finally {
      clearInterval(timer)
      sample()
    }
    expect(members).toBe(1)
    expect(count).toBe(SIZE)
    expect(nonZero).toBe(false)
    const limit = 128 * MiB
    expect(peak.heapUsed + peak.arrayBuffers).toBeLessThan(limit)
    expect(peak.rss).toBeLessThan(limit)
  })

  it('is refused with LimitExceededError by maxMemberBytes, before any body is yielded', async () => {
    const limit = 512 * MiB
    const contexts: [string, S3Context, ShardReadOptions][] = [
      ['options', ctx, { maxMemberBytes: limit }],
      ['ctx.limits', { ...ctx, limits: { maxMemberBytes: limit } }, {}],
    ]
    for (const [, context, options] of contexts) {
      let yielded = 0
      const error = await rejection(async () => {
        for await (const { body } of readShardMembers(context, shard, options)) {
          yielded++
          body.destroy()
        }
      })
      expect(yielded).toBe(0)
      expect(error).toBeInstanceOf(LimitExceededError)
      expect((error as LimitExceededError).limit).toBe('maxMemberBytes')
      expect((error as LimitExceededError).value).toBe(limit)
      expect((error as LimitExceededError).key).toBe(shard.archive_key)
      expect((error as Error).message).toContain('zeros.bin')
    }
  })
})

describe('a header that declares more data than the archive holds', () => {
  /** 10 MiB declared, 1 KiB present: about 2.5 KiB of tar in all. */
  function truncatedTar(archiveKey: string): Buffer {
    const manifest = internalManifestFor(archiveKey, [{ name: 'big.bin' }]).replace('"size_bytes":0', `"size_bytes":${10 * MiB}`)
    return Buffer.concat([regular(MANIFEST, manifest), tarHeader({ name: 'big.bin', size: 10 * MiB }), Buffer.alloc(KiB, 7)])
  }

  for (const gzip of [false, true]) {
    it(`fails with ShardReadError naming the archive and the member (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`declared-10mib.tar${gzip ? '.gz' : ''}`)
      const tar = truncatedTar(archiveKey)
      expect(tar.byteLength).toBeLessThan(3 * KiB)
      await upload(archiveKey, gzip ? gzipSync(tar) : tar)
      const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: gzip ? 'gzip' : null }

      const seen: string[] = []
      const error = await rejection(async () => {
        for await (const { entry, body } of readShardMembers(ctx, shard)) {
          seen.push(entry.member_path as string)
          await body.bytes()
        }
      })
      expect(seen).toEqual(['big.bin'])
      expect(error).toBeInstanceOf(ShardReadError)
      expect((error as ShardReadError).archiveKey).toBe(archiveKey)
      expect((error as ShardReadError).memberPath).toBe('big.bin')
      expect((error as Error).message).toContain(`${archiveKey}#big.bin`)
      expect((error as Error).message).toMatch(/truncated/)

      // One member by name fails the same way.
      for (const indexCache of [undefined, new LruCache<never>(4)]) {
        const single = await rejection(async () => (await openArchiveMember(ctx, archiveKey, 'big.bin', { indexCache }))?.bytes())
        expect(single).toBeInstanceOf(ShardReadError)
        expect((single as ShardReadError).memberPath).toBe('big.bin')
      }
    })

    it(`an internal manifest declared larger than the archive: ShardReadError (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`manifest-10mib.tar${gzip ? '.gz' : ''}`)
      const tar = Buffer.concat([tarHeader({ name: MANIFEST, size: 10 * MiB }), Buffer.from('{"kind":"file","key":"k"}\n'.repeat(40))])
      await upload(archiveKey, gzip ? gzipSync(tar) : tar)
      const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: gzip ? 'gzip' : null }
      for (const run of [() => readInternalManifest(ctx, shard), () => readMembers(shard)]) {
        const error = await rejection(run)
        expect(error).toBeInstanceOf(ShardReadError)
        expect((error as ShardReadError).archiveKey).toBe(archiveKey)
        expect((error as ShardReadError).memberPath).toBe(MANIFEST)
      }
    })
  }
})

describe('a size field in base-256 that starts with neither 0x80 nor 0xff (found by fuzz.test.ts)', () => {
  // tar-stream decodes such a field as null and then waits forever for the member's data.
  function malformedSize(type: string): Buffer {
    const header = rawHeader({ name: 'odd.bin', size: 0, type, linkname: type === '2' ? 'a.txt' : undefined })
    header[124] = 0xc7
    return fixChecksum(header)
  }

  for (const type of ['0', '2']) {
    for (const gzip of [false, true]) {
      it(`ShardReadError, no hang (type ${type}, ${gzip ? 'gzip' : 'plain'})`, async () => {
        const archiveKey = s3.key(`base256-${type}.tar${gzip ? '.gz' : ''}`)
        const manifest = internalManifestFor(archiveKey, [{ name: 'odd.bin', data: 'x' }])
        const tar = Buffer.concat([regular(MANIFEST, manifest), malformedSize(type), Buffer.alloc(512, 0x61), TAR_END])
        await upload(archiveKey, gzip ? gzipSync(tar) : tar)
        const shard: ShardEntry = { kind: 'shard', archive_key: archiveKey, compression: gzip ? 'gzip' : null }
        for (const run of [() => readMembers(shard), () => openArchiveMember(ctx, archiveKey, 'odd.bin').then((body) => body?.bytes())]) {
          const error = await rejection(run)
          expect(error).toBeInstanceOf(ShardReadError)
          expect((error as ShardReadError).archiveKey).toBe(archiveKey)
          expect((error as Error).message).toMatch(/invalid size field/)
        }
      })
    }
  }
})

describe('an internal manifest that lists members the archive does not hold', () => {
  const present = [
    { name: 'one.txt', data: 'one' },
    { name: 'three.txt', data: 'three' },
  ]
  const listed = [present[0] as TarMemberSpec, { name: 'two.txt', data: 'two' }, present[1] as TarMemberSpec]

  for (const gzip of [false, true]) {
    it(`readShardMembers yields only what the archive holds; openArchiveMember: ObjectNotFoundError (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`absent-${gzip}.tar${gzip ? '.gz' : ''}`)
      const manifest = internalManifestFor(archiveKey, listed)
      const shard = await uploadArchive(`absent-${gzip}`, [{ name: MANIFEST, data: manifest }, ...present], gzip)
      // uploadArchive chose the same key.
      expect(shard.archive_key).toBe(archiveKey)

      const read = await readMembers(shard)
      expect(read.map((r) => [r.entry.key, r.data.toString()])).toEqual([
        [`${archiveKey}#one.txt`, 'one'],
        [`${archiveKey}#three.txt`, 'three'],
      ])
      // Their entries are the listed ones (id, meta and size_bytes from the internal manifest).
      expect(read[0]?.entry).toMatchObject({ id: null, meta: null, size_bytes: 3, member_path: 'one.txt', archive_key: archiveKey })

      for (const indexCache of [undefined, new LruCache<never>(4)]) {
        const error = await rejection(() => openArchiveMember(ctx, archiveKey, 'two.txt', { indexCache }))
        expect(error).toBeInstanceOf(ObjectNotFoundError)
        expect((error as ObjectNotFoundError).key).toBe(`${archiveKey}#two.txt`)
      }
    })
  }

  it('with offsets that point elsewhere (an index that lies), openArchiveMember still says ObjectNotFoundError', async () => {
    const archiveKey = s3.key('absent-located.tar')
    const lines = [
      { kind: 'file', key: `${archiveKey}#one.txt`, member_path: 'one.txt', size_bytes: 3, offset: 2048 },
      // two.txt is absent: its offset points at three.txt's data, then past the end of the archive.
      { kind: 'file', key: `${archiveKey}#two.txt`, member_path: 'two.txt', size_bytes: 5, offset: 3072 },
      { kind: 'file', key: `${archiveKey}#three.txt`, member_path: 'three.txt', size_bytes: 5, offset: 3072 },
      { kind: 'file', key: `${archiveKey}#four.txt`, member_path: 'four.txt', size_bytes: 5, offset: 1 << 30 },
    ]
    const manifest = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`
    const tar = Buffer.concat([regular(MANIFEST, manifest), regular('one.txt', 'one'), regular('three.txt', 'three'), TAR_END])
    await upload(archiveKey, tar)
    const indexCache = new LruCache<never>(4)
    for (const name of ['two.txt', 'four.txt']) {
      const error = await rejection(() => openArchiveMember(ctx, archiveKey, name, { indexCache }))
      expect(error).toBeInstanceOf(ObjectNotFoundError)
      expect((error as ObjectNotFoundError).key).toBe(`${archiveKey}#${name}`)
    }
    const three = await openArchiveMember(ctx, archiveKey, 'three.txt', { indexCache })
    expect(Buffer.from((await three?.bytes()) ?? []).toString()).toBe('three')
  })
})

describe('an internal manifest with a wrong size_bytes', () => {
  for (const gzip of [false, true]) {
    it(`verify: true fails with IntegrityError on size_bytes; without verify the bytes come through (${gzip ? 'gzip' : 'plain'})`, async () => {
      const archiveKey = s3.key(`wrong-size-${gzip}.tar${gzip ? '.gz' : ''}`)
      const members = [
        { name: 'a.txt', data: 'alpha' },
        { name: 'b.txt', data: 'bravo' },
      ]
      // b.txt is listed with 4 bytes; it holds 5.
      const manifest = internalManifestFor(archiveKey, members).replace(/("member_path":"b\.txt".*"size_bytes":)5/, '$14')
      expect(manifest).toContain('"size_bytes":4')
      const shard = await uploadArchive(`wrong-size-${gzip}`, [{ name: MANIFEST, data: manifest }, ...members], gzip)

      const plain = await readMembers(shard)
      expect(plain.map((r) => r.data.toString())).toEqual(['alpha', 'bravo'])
      expect(plain[1]?.entry.size_bytes).toBe(4)

      const got: string[] = []
      const error = await rejection(async () => {
        for await (const { entry, body } of readShardMembers(ctx, shard, { verify: true })) {
          got.push(`${entry.member_path}=${await body.text()}`)
        }
      })
      expect(got).toEqual(['a.txt=alpha'])
      expect(error).toBeInstanceOf(IntegrityError)
      expect(error).toBeInstanceOf(S3ExchangeError)
      expect((error as IntegrityError).field).toBe('size_bytes')
      expect((error as IntegrityError).key).toBe(`${archiveKey}#b.txt`)
      expect((error as IntegrityError).expected).toBe(4)
      expect((error as IntegrityError).actual).toBe(5)
    })
  }
})
