import { Readable } from 'node:stream'
import { gunzipSync, gzipSync, zstdCompressSync } from 'node:zlib'
import { buildTar, type TarMemberSpec } from '@s3exchange/testing'
import { describe, expect, it } from 'vitest'
import { ShardReadError, UnsupportedCompressionError } from '../format/errors.js'
import { isRegularFile, readTarMembers, sniffCompression, type TarMember } from './tar-reader.js'

const ARCHIVE = 'ds/shards/shard-00000.tar'

/** A Readable of `bytes` in chunks of `size` bytes (one chunk by default). */
function source(bytes: Uint8Array, size = bytes.byteLength || 1): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.byteLength; i += size) chunks.push(Buffer.from(bytes.subarray(i, i + size)))
  return Readable.from(chunks)
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

interface Read {
  name: string
  type: string
  size: number
  linkname: string | null
  dataOffset: number
  data: string
}

/** Every member, with its data read. */
async function readMembers(archive: Readable, archiveKey = ARCHIVE): Promise<Read[]> {
  const out: Read[] = []
  for await (const member of readTarMembers(archive, { archiveKey })) {
    const { name, type, size, linkname, dataOffset } = member
    out.push({ name, type, size, linkname, dataOffset, data: (await readAll(member.stream)).toString() })
  }
  return out
}

/** The member names, without reading their data (unread members are skipped). */
async function listMembers(archive: Readable, archiveKey = ARCHIVE): Promise<string[]> {
  const names: string[] = []
  for await (const member of readTarMembers(archive, { archiveKey })) names.push(member.name)
  return names
}

async function shardError(run: () => Promise<unknown>): Promise<ShardReadError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ShardReadError)
  const shardError = error as ShardReadError
  expect(shardError.archiveKey).toBe(ARCHIVE)
  expect(shardError.message).toContain(ARCHIVE)
  return shardError
}

const longName = `${'deep/'.repeat(30)}member-with-a-long-name.txt`
const members: TarMemberSpec[] = [
  { name: '__manifest__.jsonl', data: '{"kind":"file","key":"x"}\n' },
  { name: 'a.txt', data: 'alpha' },
  { name: 'dir', type: 'directory' },
  { name: longName, data: 'long' },
  { name: 'dïr/naïve-名前.txt', data: 'ünïcode' },
  { name: 'empty.bin', data: '' },
  { name: 'big.bin', data: 'z'.repeat(1500) },
  { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
  { name: 'hard', type: 'link', linkname: 'a.txt' },
]

describe('sniffCompression', () => {
  it('recognises the magic bytes', () => {
    expect(sniffCompression(gzipSync(Buffer.from('x')))).toBe('gzip')
    expect(sniffCompression(zstdCompressSync(Buffer.from('x')))).toBe('zstd')
    expect(sniffCompression(Buffer.from('BZh91AY&SY'))).toBe('bzip2')
    expect(sniffCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe('xz')
  })

  it('takes anything else for a plain tar', async () => {
    expect(sniffCompression(await buildTar([{ name: 'a', data: 'a' }]))).toBeNull()
    expect(sniffCompression(new Uint8Array(0))).toBeNull()
    expect(sniffCompression(Buffer.from([0x1f]))).toBeNull()
    expect(sniffCompression(Buffer.from([0x1f, 0x8c]))).toBeNull()
  })
})

describe('isRegularFile', () => {
  it('is true for files only', () => {
    expect(isRegularFile({ type: 'file' })).toBe(true)
    expect(isRegularFile({ type: 'contiguous-file' })).toBe(true)
    for (const type of ['directory', 'symlink', 'link', 'fifo', 'character-device']) expect(isRegularFile({ type })).toBe(false)
  })
})

describe('readTarMembers', () => {
  it('yields names, types, sizes and data in archive order', async () => {
    const read = await readMembers(source(await buildTar(members)))
    expect(read.map(({ name, type, size, linkname, data }) => ({ name, type, size, linkname, data }))).toStrictEqual([
      { name: '__manifest__.jsonl', type: 'file', size: 26, linkname: null, data: '{"kind":"file","key":"x"}\n' },
      { name: 'a.txt', type: 'file', size: 5, linkname: null, data: 'alpha' },
      { name: 'dir', type: 'directory', size: 0, linkname: null, data: '' },
      { name: longName, type: 'file', size: 4, linkname: null, data: 'long' },
      { name: 'dïr/naïve-名前.txt', type: 'file', size: 9, linkname: null, data: 'ünïcode' },
      { name: 'empty.bin', type: 'file', size: 0, linkname: null, data: '' },
      { name: 'big.bin', type: 'file', size: 1500, linkname: null, data: 'z'.repeat(1500) },
      { name: 'link', type: 'symlink', size: 0, linkname: '/etc/passwd', data: '' },
      { name: 'hard', type: 'link', size: 0, linkname: 'a.txt', data: '' },
    ])
    expect(longName.length).toBeGreaterThan(100)
  })

  it('dataOffset is the offset of the data in the uncompressed tar', async () => {
    const tar = await buildTar(members)
    for (const archive of [tar, gzipSync(tar)]) {
      const read = await readMembers(source(archive))
      for (const member of read.filter(isRegularFile)) {
        expect(member.dataOffset % 512, member.name).toBe(0)
        expect(tar.subarray(member.dataOffset, member.dataOffset + member.size).toString(), member.name).toBe(member.data)
      }
      // pax headers push the data of the long and non-ASCII names further on.
      const offsets = read.map((m) => m.dataOffset)
      expect([...offsets].sort((a, b) => a - b)).toStrictEqual(offsets)
    }
  })

  it('reads tar.gz the same as tar, whatever the chunking', async () => {
    const tar = await buildTar(members)
    const want = await readMembers(source(tar))
    for (const size of [1, 3, 5, 7, 512, 4096]) {
      expect(await readMembers(source(tar, size)), `tar in chunks of ${size}`).toStrictEqual(want)
      expect(await readMembers(source(gzipSync(tar), size)), `tar.gz in chunks of ${size}`).toStrictEqual(want)
    }
  })

  it('reads zstd-compressed tars', async () => {
    const tar = await buildTar(members)
    expect(await readMembers(source(zstdCompressSync(tar)))).toStrictEqual(await readMembers(source(tar)))
  })

  it('reads concatenated gzip members as one stream', async () => {
    const tar = await buildTar(members)
    const half = 1024
    const twoMembers = Buffer.concat([gzipSync(tar.subarray(0, half)), gzipSync(tar.subarray(half))])
    expect(gunzipSync(twoMembers)).toStrictEqual(tar)
    expect(await readMembers(source(twoMembers))).toStrictEqual(await readMembers(source(tar)))
  })

  it('skips the members that are not read', async () => {
    const tar = await buildTar(members)
    for (const archive of [tar, gzipSync(tar)]) {
      const seen: string[] = []
      let big = ''
      for await (const member of readTarMembers(source(archive, 100), { archiveKey: ARCHIVE })) {
        seen.push(member.name)
        if (member.name === 'big.bin') big = (await readAll(member.stream)).toString()
      }
      expect(seen).toStrictEqual(members.map((m) => m.name))
      expect(big).toBe('z'.repeat(1500))
    }
  })

  it('a member stream destroyed before its end ends the archive with a ShardReadError (no hang)', async () => {
    const tar = await buildTar(members)
    const seen: string[] = []
    const error = await shardError(async () => {
      for await (const member of readTarMembers(source(tar, 64), { archiveKey: ARCHIVE })) {
        seen.push(member.name)
        if (member.name === 'big.bin') {
          for await (const chunk of member.stream) {
            expect(chunk.byteLength).toBeGreaterThan(0)
            break // destroys the member stream, and with it tar-stream's extractor
          }
        }
      }
    })
    expect(error.memberPath).toBe('big.bin')
    expect(error.message).toMatch(/destroyed before its end/)
    expect(seen.at(-1)).toBe('big.bin')
  })

  it('a member stream read to its end does not end the archive', async () => {
    const tar = await buildTar(members)
    const seen: string[] = []
    for await (const member of readTarMembers(source(tar, 64), { archiveKey: ARCHIVE })) {
      seen.push(member.name)
      for await (const chunk of member.stream) expect(chunk.byteLength).toBeGreaterThan(0)
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(seen).toStrictEqual(members.map((m) => m.name))
  })

  it('breaking out of the loop destroys the source', async () => {
    const archive = source(await buildTar(members), 64)
    for await (const member of readTarMembers(archive, { archiveKey: ARCHIVE })) {
      if (member.name === 'a.txt') break
    }
    expect(archive.destroyed).toBe(true)
  })

  it('a truncated tar is a ShardReadError naming the archive (and the member being read)', async () => {
    const tar = await buildTar(members)
    const bigOffset = (await readMembers(source(tar))).find((m) => m.name === 'big.bin')?.dataOffset ?? 0
    const truncated = tar.subarray(0, bigOffset + 700)
    const error = await shardError(() => listMembers(source(truncated, 256)))
    expect(error.message).toMatch(/truncated/)
    // Reading the truncated member's data fails too.
    await expect(readMembers(source(truncated, 256))).rejects.toThrow(/end of data|truncated/i)
  })

  it('a tar cut in a header is a ShardReadError', async () => {
    const tar = await buildTar(members)
    await shardError(() => listMembers(source(tar.subarray(0, 512 + 512 + 100))))
  })

  it('a truncated tar.gz is a ShardReadError naming the archive', async () => {
    const gz = gzipSync(await buildTar(members))
    for (const cut of [20, Math.floor(gz.byteLength / 2), gz.byteLength - 4]) {
      const error = await shardError(() => listMembers(source(gz.subarray(0, cut), 64)))
      expect(error.message).toMatch(/truncated/)
      await expect(readMembers(source(gz.subarray(0, cut), 64))).rejects.toThrow()
    }
  })

  it('a corrupt gzip stream is a ShardReadError', async () => {
    const gz = Buffer.from(gzipSync(await buildTar(members)))
    for (let i = 20; i < 60; i++) gz[i] = (gz[i] as number) ^ 0xff
    await shardError(() => listMembers(source(gz)))
  })

  it('random bytes are a ShardReadError saying it is not a tar', async () => {
    const noise = Buffer.alloc(4096)
    for (let i = 0; i < noise.byteLength; i++) noise[i] = (i * 7919 + 13) % 251
    expect(sniffCompression(noise)).toBeNull()
    const error = await shardError(() => listMembers(source(noise)))
    expect(error.message).toMatch(/not a tar archive/)
  })

  it('a few bytes that are not a tar are a ShardReadError', async () => {
    await shardError(() => listMembers(source(Buffer.from('abc'))))
    await shardError(() => listMembers(source(Buffer.from('hello world, this is text'), 1)))
  })

  it('a 0-byte object is a ShardReadError saying it is empty', async () => {
    const error = await shardError(() => listMembers(Readable.from([])))
    expect(error.message).toMatch(/empty/)
  })

  it('bzip2 and xz are an UnsupportedCompressionError (a ShardReadError) naming the archive and the codec', async () => {
    const bzip2 = await shardError(() => listMembers(source(Buffer.from('BZh91AY&SY-not-really'))))
    expect(bzip2).toBeInstanceOf(UnsupportedCompressionError)
    expect((bzip2 as UnsupportedCompressionError).compression).toBe('bzip2')
    expect(bzip2.message).toMatch(/bzip2 compression is not supported/)
    const xz = await shardError(() => listMembers(source(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]))))
    expect(xz).toBeInstanceOf(UnsupportedCompressionError)
    expect((xz as UnsupportedCompressionError).compression).toBe('xz')
  })

  it('an error of the source is a ShardReadError with it as cause', async () => {
    const tar = await buildTar(members)
    const cause = new Error('socket hang up')
    const failing = Readable.from(
      (async function* () {
        yield tar.subarray(0, 1024)
        throw cause
      })(),
    )
    const error = await shardError(() => listMembers(failing))
    expect(error.cause).toBe(cause)
  })

  it('the member streams are usable as TarMember streams', async () => {
    const tar = await buildTar([{ name: 'only.txt', data: 'x' }])
    const got: TarMember[] = []
    for await (const member of readTarMembers(source(tar), { archiveKey: ARCHIVE })) {
      got.push(member)
      expect((await readAll(member.stream)).toString()).toBe('x')
    }
    expect(got.map((m) => m.name)).toStrictEqual(['only.txt'])
  })
})
