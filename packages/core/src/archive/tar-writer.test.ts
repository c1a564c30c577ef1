/**
 * The tar header encoder: its output must be standard tar, read the same by tar-stream (through
 * readTarMembers), Python's tarfile and GNU tar, with pax headers for long and non-ASCII names,
 * correct checksums, and a tarHeaderSize that always equals the real header size (shards record
 * member offsets from it).
 */

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { readTarMembers } from './tar-reader.js'
import { paddedSize, TAR_END, type TarHeaderSpec, tarHeader, tarHeaderSize, tarPadding } from './tar-writer.js'

const dir = mkdtempSync(join(tmpdir(), 's3x-tar-writer-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const LOCALE = { ...process.env, LC_ALL: 'C.UTF-8' }
const MAX_OCTAL_SIZE = 0o77777777777

interface Member {
  name: string
  data: Buffer
  mode?: number
  mtime?: number
}

/** A tar of `members` built with tarHeader, and where each member's data starts. */
function buildArchive(members: Member[]): { tar: Buffer; offsets: number[] } {
  const chunks: Uint8Array[] = []
  const offsets: number[] = []
  let position = 0
  for (const member of members) {
    const header = tarHeader({ name: member.name, size: member.data.byteLength, mode: member.mode, mtime: member.mtime })
    offsets.push(position + header.byteLength)
    chunks.push(header, member.data, tarPadding(member.data.byteLength))
    position += header.byteLength + paddedSize(member.data.byteLength)
  }
  chunks.push(TAR_END)
  return { tar: Buffer.concat(chunks), offsets }
}

let fileCount = 0
function writeTemp(bytes: Uint8Array, name = `archive-${fileCount++}.tar`): string {
  const path = join(dir, name)
  writeFileSync(path, bytes)
  return path
}

interface PythonMember {
  name: string
  size: number
  offset_data: number
  type: string
  mode: number
  mtime: number
  sha256: string
}

const PYTHON_LIST = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], 'r:*') as archive:
    for m in archive:
        data = archive.extractfile(m).read() if m.isfile() else b''
        out.append({'name': m.name, 'size': m.size, 'offset_data': m.offset_data, 'type': m.type.decode(),
                    'mode': m.mode, 'mtime': m.mtime, 'sha256': hashlib.sha256(data).hexdigest()})
print(json.dumps(out))
`

function pythonList(path: string): PythonMember[] {
  return JSON.parse(execFileSync('python3', ['-c', PYTHON_LIST, path], { encoding: 'utf8', maxBuffer: 64 << 20 }))
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

async function readWithTarStream(tar: Buffer) {
  const out: { name: string; type: string; size: number; dataOffset: number; data: Buffer }[] = []
  for await (const member of readTarMembers(Readable.from([tar]), { archiveKey: 'test.tar' })) {
    const chunks: Buffer[] = []
    for await (const chunk of member.stream) chunks.push(Buffer.from(chunk))
    out.push({ name: member.name, type: member.type, size: member.size, dataOffset: member.dataOffset, data: Buffer.concat(chunks) })
  }
  return out
}

/** The header blocks of a header region: the ustar header, after the pax header (whose records sit between) when there is one. */
function headerBlocks(header: Buffer): Buffer[] {
  const last = header.subarray(header.byteLength - 512)
  return header.byteLength === 512 ? [last] : [header.subarray(0, 512), last]
}

function checksumOf(block: Buffer): number {
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number)
  return sum
}

function field(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length).toString('latin1')
  const nul = raw.indexOf('\u0000')
  return nul === -1 ? raw : raw.slice(0, nul)
}

/** The pax records of a header made by tarHeader, checked to be well-formed: `<length> key=value\n`, length in bytes. */
function paxRecords(header: Buffer): Record<string, string> | undefined {
  if (header.byteLength === 512) return undefined
  const first = header.subarray(0, 512)
  expect(field(first, 156, 1)).toBe('x')
  const size = Number.parseInt(field(first, 124, 12), 8)
  const body = header.subarray(512, 512 + size)
  const records: Record<string, string> = {}
  let at = 0
  while (at < body.byteLength) {
    const space = body.indexOf(0x20, at)
    const length = Number(body.subarray(at, space).toString('ascii'))
    const record = body.subarray(at, at + length)
    expect(record[record.byteLength - 1]).toBe(0x0a)
    const text = record.subarray(space - at + 1, record.byteLength - 1).toString('utf8')
    const eq = text.indexOf('=')
    records[text.slice(0, eq)] = text.slice(eq + 1)
    at += length
  }
  expect(at).toBe(body.byteLength)
  return records
}

const NAMES = {
  short: 'a.txt',
  exactly100: 'x'.repeat(100),
  exactly101: 'y'.repeat(101),
  slash100: `dir/${'z'.repeat(96)}`,
  nonAscii: 'dïr/ünïcødé 🎧.wav',
  nonAscii100Bytes: 'é'.repeat(50),
  nonAsciiLong: `${'ü'.repeat(70)}/clip.wav`,
  deep: Array.from({ length: 8 }, (_, i) => `segment-${i}-${'s'.repeat(30)}`).join('/'),
  spaces: 'with space/and#hash.txt',
}

describe('tarPadding and paddedSize', () => {
  it.each([
    [0, 0],
    [1, 511],
    [100, 412],
    [511, 1],
    [512, 0],
    [513, 511],
    [1024, 0],
    [1025, 511],
  ])('size %i pads with %i zero bytes', (size, padding) => {
    const pad = tarPadding(size)
    expect(pad.byteLength).toBe(padding)
    expect(pad.every((byte) => byte === 0)).toBe(true)
    expect(paddedSize(size)).toBe(size + padding)
    expect(paddedSize(size) % 512).toBe(0)
  })

  it('TAR_END is two zero blocks', () => {
    expect(TAR_END.byteLength).toBe(1024)
    expect(TAR_END.every((byte) => byte === 0)).toBe(true)
  })
})

describe('tarHeader', () => {
  it('writes a plain ustar header for a short ASCII name: fields, magic, checksum', () => {
    const header = tarHeader({ name: 'a.txt', size: 1234, mode: 0o600, mtime: 1_700_000_000 })
    expect(header.byteLength).toBe(512)
    expect(field(header, 0, 100)).toBe('a.txt')
    expect(field(header, 100, 8)).toBe('0000600')
    expect(field(header, 108, 8)).toBe('0000000')
    expect(field(header, 116, 8)).toBe('0000000')
    expect(field(header, 124, 12)).toBe((1234).toString(8).padStart(11, '0'))
    expect(field(header, 136, 12)).toBe((1_700_000_000).toString(8).padStart(11, '0'))
    expect(field(header, 156, 1)).toBe('0')
    expect(header.subarray(257, 265).toString('latin1')).toBe('ustar\u000000')
    // Checksum: six octal digits, NUL, space; the sum of the bytes with the field taken as spaces.
    expect(header.subarray(154, 156).toString('latin1')).toBe('\u0000 ')
    expect(Number.parseInt(header.subarray(148, 154).toString('latin1'), 8)).toBe(checksumOf(header))
  })

  it('defaults to mode 0644 and mtime 0', () => {
    const header = tarHeader({ name: 'a', size: 0 })
    expect(field(header, 100, 8)).toBe('0000644')
    expect(field(header, 136, 12)).toBe('00000000000')
  })

  it.each(Object.entries(NAMES))('every block of the %s header has a correct checksum', (_, name) => {
    for (const size of [0, 1, 513, MAX_OCTAL_SIZE + 1]) {
      for (const block of headerBlocks(tarHeader({ name, size }))) {
        expect(Number.parseInt(block.subarray(148, 154).toString('latin1'), 8)).toBe(checksumOf(block))
      }
    }
  })

  it('uses no pax header for a name of exactly 100 ASCII bytes, and one for 101', () => {
    const at100 = tarHeader({ name: NAMES.exactly100, size: 1 })
    expect(at100.byteLength).toBe(512)
    expect(at100.subarray(0, 100).toString('latin1')).toBe(NAMES.exactly100)
    const at101 = tarHeader({ name: NAMES.exactly101, size: 1 })
    expect(at101.byteLength).toBe(1536)
    expect(paxRecords(at101)).toEqual({ path: NAMES.exactly101 })
  })

  it('uses a pax header for any non-ASCII name, even a short one', () => {
    for (const name of [NAMES.nonAscii, NAMES.nonAscii100Bytes, 'ü', '\u0080']) {
      const header = tarHeader({ name, size: 3 })
      expect(paxRecords(header)).toEqual({ path: name })
      // The ustar name field holds an ASCII stand-in.
      expect(/^[\x20-\x7e]*$/.test(field(header.subarray(header.byteLength - 512), 0, 100))).toBe(true)
    }
  })

  it('writes a size beyond 11 octal digits as a pax record, with 0 in the ustar field', () => {
    const size = 2 ** 34
    const header = tarHeader({ name: 'big.bin', size })
    expect(paxRecords(header)).toEqual({ size: String(size) })
    expect(field(header.subarray(header.byteLength - 512), 124, 12)).toBe('00000000000')
    const both = tarHeader({ name: NAMES.nonAscii, size })
    expect(paxRecords(both)).toEqual({ path: NAMES.nonAscii, size: String(size) })
  })

  it('Python reads a pax size beyond 8 GiB', () => {
    const size = 2 ** 34 + 7
    const path = writeTemp(Buffer.concat([tarHeader({ name: 'big.bin', size }), TAR_END]))
    const script = 'import sys, tarfile\nt = tarfile.open(sys.argv[1])\nm = t.next()\nprint(m.name, m.size)'
    expect(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' }).trim()).toBe(`big.bin ${size}`)
  })

  it('pax record lengths are right where their digit count changes', () => {
    // A record is "<len> path=<name>\n"; its length passes 99→100 and 999→1000 in these ranges.
    const names: string[] = []
    for (let n = 80; n <= 100; n++) names.push('é'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2))
    for (let n = 101; n <= 110; n++) names.push('p'.repeat(n))
    for (let n = 980; n <= 1000; n++) names.push(`${'q/'.repeat(Math.floor(n / 2))}${'r'.repeat(n % 2)}`.slice(0, n))
    for (const name of names) {
      const header = tarHeader({ name, size: 0 })
      expect(paxRecords(header)).toEqual({ path: name })
      expect(tarHeaderSize({ name, size: 0 })).toBe(header.byteLength)
    }
  })
})

describe('tarHeaderSize', () => {
  it('equals tarHeader(...).byteLength for many names and sizes', () => {
    const sizes = [0, 1, 511, 512, 513, 10 ** 9, MAX_OCTAL_SIZE, MAX_OCTAL_SIZE + 1, 2 ** 40, Number.MAX_SAFE_INTEGER]
    const names: string[] = []
    for (let n = 1; n <= 1100; n += n < 130 ? 1 : 7) {
      names.push('a'.repeat(n))
      names.push('é'.repeat(n))
      names.push(`${'🎧'.repeat(Math.ceil(n / 4))}`)
      names.push(`d/${'b'.repeat(n)}/ü`)
    }
    let checked = 0
    for (const name of names) {
      for (const size of sizes) {
        const spec: TarHeaderSpec = { name, size }
        expect(tarHeaderSize(spec), `${name.length} chars, size ${size}`).toBe(tarHeader(spec).byteLength)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(4000)
  })
})

describe('archives made of tarHeader output', () => {
  const members: Member[] = [
    ...Object.values(NAMES).map((name, i) => ({ name, data: Buffer.from(`data of member ${i}: ${name}`) })),
    { name: 'empty', data: Buffer.alloc(0) },
    { name: 'size-511', data: Buffer.alloc(511, 1) },
    { name: 'size-512', data: Buffer.alloc(512, 2) },
    { name: 'size-513', data: Buffer.alloc(513, 3) },
    { name: 'size-1024', data: Buffer.alloc(1024, 4) },
    { name: 'mode-and-mtime', data: Buffer.from('m'), mode: 0o600, mtime: 1_700_000_000 },
    // Names whose pax record length changes digit count.
    ...[85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95].map((n) => ({
      name: 'ü'.repeat(Math.floor(n / 2)) + 'a'.repeat(n % 2),
      data: Buffer.from(String(n)),
    })),
    ...[990, 991, 992, 993, 994].map((n) => ({
      name: `${'long-segment-'.repeat(Math.ceil(n / 13))}`.slice(0, n).replace(/(.{100})/g, '$1/'),
      data: Buffer.from(String(n)),
    })),
  ]
  const { tar, offsets } = buildArchive(members)
  const path = writeTemp(tar, 'members.tar')

  it('has distinct member names', () => {
    expect(new Set(members.map((m) => m.name)).size).toBe(members.length)
  })

  it('tar-stream (readTarMembers) reads every member: name, size, data offset and data', async () => {
    const read = await readWithTarStream(tar)
    expect(read.map((m) => m.name)).toEqual(members.map((m) => m.name))
    for (const [i, m] of read.entries()) {
      expect(m.type).toBe('file')
      expect(m.size).toBe(members[i]?.data.byteLength)
      expect(m.dataOffset).toBe(offsets[i])
      expect(m.data.equals(members[i]?.data as Buffer)).toBe(true)
      expect(tar.subarray(m.dataOffset, m.dataOffset + m.size).equals(members[i]?.data as Buffer)).toBe(true)
    }
  })

  it("Python's tarfile reads every member: name, size, offset, mode, mtime and data", () => {
    const read = pythonList(path)
    expect(read.map((m) => m.name)).toEqual(members.map((m) => m.name))
    for (const [i, m] of read.entries()) {
      const member = members[i] as Member
      expect(m.type).toBe('0')
      expect(m.size).toBe(member.data.byteLength)
      expect(m.offset_data).toBe(offsets[i])
      expect(m.mode).toBe(member.mode ?? 0o644)
      expect(m.mtime).toBe(member.mtime ?? 0)
      expect(m.sha256).toBe(sha256(member.data))
    }
  })

  it('GNU tar lists every member with its size, and extracts the same bytes', () => {
    const names = execFileSync('tar', ['--quoting-style=literal', '-tf', path], { encoding: 'utf8', env: LOCALE }).split('\n').slice(0, -1)
    expect(names).toEqual(members.map((m) => m.name))
    const verbose = execFileSync('tar', ['--quoting-style=literal', '-tvf', path], { encoding: 'utf8', env: LOCALE })
      .split('\n')
      .slice(0, -1)
    expect(verbose).toHaveLength(members.length)
    for (const [i, line] of verbose.entries()) {
      const member = members[i] as Member
      // "-rw-r--r-- 0/0   5 1970-01-01 00:00 name"
      const match = /^(-[rwx-]{9}) 0\/0 +(\d+) \d{4}-\d\d-\d\d \d\d:\d\d (.*)$/.exec(line)
      expect(match, line).not.toBeNull()
      expect(match?.[1]).toBe(member.mode === 0o600 ? '-rw-------' : '-rw-r--r--')
      expect(Number(match?.[2])).toBe(member.data.byteLength)
      expect(match?.[3]).toBe(member.name)
    }
    const out = join(dir, 'gnu-extract')
    mkdirSync(out)
    execFileSync('tar', ['-xf', path, '-C', out], { env: LOCALE })
    for (const member of members) expect(readFileSync(join(out, member.name)).equals(member.data), member.name).toBe(true)
  })

  it('a corrupted checksum is noticed by all three readers (so the checks above can fail)', async () => {
    const bad = Buffer.from(tar)
    bad[0] = (bad[0] as number) ^ 0x01 // first byte of the first name: the checksum no longer matches
    const badPath = writeTemp(bad)
    await expect(readWithTarStream(bad)).rejects.toThrow()
    expect(() => execFileSync('python3', ['-c', PYTHON_LIST, badPath], { stdio: 'pipe' })).toThrow()
    expect(() => execFileSync('tar', ['-tf', badPath], { stdio: 'pipe' })).toThrow()
  })
})
