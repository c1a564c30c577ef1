/**
 * Cursors and positioned manifest lines as pure logic, without a server: a position survives its
 * string; strings that are not cursors are `InvalidCursorError`s; a cursor of another root or
 * other options does not fit; lines carry byte ranges and CRC-32s that match the bytes, read from
 * the start or from a line on, with blank lines, `\r\n`, a BOM and a last line without newline.
 */
import { crc32 } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  type CursorPosition,
  checkCursorFits,
  decodeCursor,
  encodeCursor,
  isShuffledPosition,
  orderFingerprint,
  type ShuffledCursorPosition,
} from './cursor.js'
import { CursorMismatchError, InvalidCursorError, InvalidManifestError } from './errors.js'
import { positionedLines } from './manifest-lines.js'

const position: CursorPosition = {
  root: 'ds/manifest.jsonl',
  options: orderFingerprint({ partition: { index: 1, count: 3 } }),
  frames: [
    { key: 'ds/manifest.jsonl', etag: 'abc', start: 0, end: 60, startCrc: 0, crc: 123, line: 1 },
    { key: 'ds/manifests/part-1.jsonl', etag: undefined, start: 100, end: 180, startCrc: 7, crc: 4_000_000_000, line: 3 },
  ],
  member: { index: 4, path: 'a/0004.wav' },
  rootRefs: 2,
  visited: ['ds/other.jsonl'],
  partition: { loads: [1.5, 2, 0], items: [1, 2, 0], knownSum: 3.5, knownCount: 3 },
}

describe('cursor strings', () => {
  it('a position survives its string, which is base64url', () => {
    const cursor = encodeCursor(position)
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(decodeCursor(cursor)).toStrictEqual(position)
    const { member: _member, partition: _partition, ...bare } = { ...position, visited: [] }
    expect(decodeCursor(encodeCursor(bare))).toStrictEqual(bare)
  })

  it('strings that are not cursors are InvalidCursorErrors saying why', () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const record = JSON.parse(Buffer.from(encodeCursor(position), 'base64url').toString()) as Record<string, unknown>
    const cases: [unknown, RegExp][] = [
      ['', /non-empty string/],
      [42, /non-empty string/],
      ['a b', /not base64url/],
      ['aGVsbG8', /not base64url JSON/],
      [b64([1]), /not a cursor record/],
      [b64({ ...record, v: 2 }), /unknown version 2/],
      [b64({ ...record, r: '' }), /field 'r'/],
      [b64({ ...record, f: [] }), /field 'f'/],
      [b64({ ...record, f: [['k', null, 5, 5, 0, 0, 1]] }), /field 'f'/],
      [b64({ ...record, f: [['other', null, 0, 5, 0, 0, 1]] }), /first frame is not its root/],
      [b64({ ...record, m: [-1, 'a'] }), /field 'm'/],
      [b64({ ...record, p: [[1], [1, 2], 0, 0] }), /field 'p'/],
    ]
    for (const [input, reason] of cases) {
      expect(() => decodeCursor(input as string), String(input)).toThrow(InvalidCursorError)
      expect(() => decodeCursor(input as string)).toThrow(reason)
    }
  })

  it('a cursor of another root or other options does not fit, naming why', () => {
    expect(() => checkCursorFits(position, 'ds/manifest.jsonl', position.options)).not.toThrow()
    const other = (() => {
      try {
        checkCursorFits(position, 'other.jsonl', position.options)
      } catch (error) {
        return error
      }
    })()
    expect(other).toBeInstanceOf(CursorMismatchError)
    expect(other).toMatchObject({ key: 'other.jsonl', reason: 'manifest' })
    expect(() => checkCursorFits(position, 'ds/manifest.jsonl', '')).toThrow(/made with partition=1\/3, resumed with none/)
    expect(orderFingerprint({ partition: { index: 0, count: 1 }, resolveRefs: true })).toBe('')
    expect(orderFingerprint({ resolveRefs: false, shuffle: { seed: 7, epoch: 2 } })).toBe(
      'resolveRefs=false,shuffle=["7",2,10000,"entries"]',
    )
  })

  it('the shuffle in the options is normalised as checkShuffle reads it; what differs is named', () => {
    const a = orderFingerprint({ shuffle: { seed: 1, epoch: 0 }, mixes: 'members' })
    expect(orderFingerprint({ shuffle: { seed: '1', epoch: 0, bufferSize: 10_000 }, mixes: 'members' })).toBe(a)
    expect(orderFingerprint({ shuffle: { seed: 1, epoch: 0 }, mixes: 'entries' })).not.toBe(a)
    const b = orderFingerprint({ partition: { index: 0, count: 2 }, shuffle: { seed: 1, epoch: 1 }, mixes: 'members' })
    expect(() => checkCursorFits({ ...shuffled, options: a }, shuffled.root, b)).toThrow(/\(partition, shuffle differ\)/)
    expect(() => checkCursorFits({ ...shuffled, options: a }, shuffled.root, '')).toThrow(
      /made with shuffle=\["1",0,10000,"members"\], resumed with none \(shuffle differs\)/,
    )
    expect(() => checkCursorFits(position, position.root, a)).toThrow(/resumed with shuffle=.* \(partition, shuffle differ\)/)
  })
})

const shuffled: ShuffledCursorPosition = {
  kind: 'shuffled',
  root: 'ds/manifest.jsonl',
  options: orderFingerprint({ shuffle: { seed: 'run', epoch: 3, bufferSize: 8 }, mixes: 'members' }),
  epoch: { units: 12, digest: '0123456789abcdef0123456789abcdef' },
  emitted: 40,
  low: { unit: 5, input: 31 },
  member: { index: 2, path: 'f/2.txt' },
}

describe('cursor strings of a shuffled epoch', () => {
  it('a position survives its string; a traversal cursor and a shuffled one are told apart', () => {
    const cursor = encodeCursor(shuffled)
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/)
    const decoded = decodeCursor(cursor)
    expect(isShuffledPosition(decoded)).toBe(true)
    expect(decoded).toStrictEqual(shuffled)
    const { member: _member, ...bare } = shuffled
    expect(decodeCursor(encodeCursor(bare))).toStrictEqual(bare)
    expect(isShuffledPosition(decodeCursor(encodeCursor(position)))).toBe(false)
  })

  it('malformed ones are InvalidCursorErrors', () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const record = JSON.parse(Buffer.from(encodeCursor(shuffled), 'base64url').toString()) as Record<string, unknown>
    const cases: [unknown, RegExp][] = [
      [b64({ ...record, s: [12, 'abc', 40, 5] }), /field 's'/],
      [b64({ ...record, s: [12, 'xyz', 40, 5, 31] }), /field 's'/],
      [b64({ ...record, s: [12, 'abc', -1, 5, 31] }), /field 's'/],
      [b64({ ...record, s: [4, 'abc', 40, 5, 31] }), /field 's'/],
      [b64({ ...record, m: [0] }), /field 'm'/],
      [b64({ ...record, r: 7 }), /field 'r'/],
    ]
    for (const [input, reason] of cases) expect(() => decodeCursor(input as string), String(input)).toThrow(reason)
    for (const [input] of cases) expect(() => decodeCursor(input as string)).toThrow(InvalidCursorError)
  })
})

describe('positionedLines', () => {
  const text = '\ufeff{"kind":"file","key":"a"}\r\n\n  \n{"kind":"file","key":"é"}\n{"kind":"manifest_ref","key":"p"}'
  const bytes = Buffer.from(text)

  it('gives each line its byte range, line number and the CRC-32 of the bytes up to it, in any chunking', async () => {
    for (const size of [1, 3, 7, bytes.length]) {
      const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))
      const lines = await Array.fromAsync(positionedLines(chunks, { key: 'm.jsonl' }))
      expect(lines.map((l) => [l.entry.kind, l.lineNumber])).toStrictEqual([
        ['file', 1],
        ['file', 4],
        ['manifest_ref', 5],
      ])
      for (const line of lines) {
        expect(line.crc).toBe(crc32(bytes.subarray(0, line.end)))
        expect(line.startCrc).toBe(crc32(bytes.subarray(0, line.start)))
      }
      expect(lines[0]?.start).toBe(0)
      expect(lines.at(-1)?.end).toBe(bytes.length)
    }
  })

  it('read from a line on, gives the same positions', async () => {
    const all = await Array.fromAsync(positionedLines([bytes]))
    const second = all[1] as (typeof all)[number]
    const from = { offset: second.start, crc: second.startCrc, lineNumber: second.lineNumber }
    const rest = await Array.fromAsync(positionedLines([bytes.subarray(second.start)], { from }))
    expect(rest).toStrictEqual(all.slice(1))
  })

  it('bad lines are InvalidManifestErrors with their line number', async () => {
    const bad = Buffer.concat([Buffer.from('{"kind":"file","key":"a"}\n'), Buffer.from([0xff, 0x0a])])
    await expect(Array.fromAsync(positionedLines([bad], { key: 'm' }))).rejects.toThrow(InvalidManifestError)
    await expect(Array.fromAsync(positionedLines([bad], { key: 'm' }))).rejects.toMatchObject({ lineNumber: 2 })
    const long = Buffer.from(`{"kind":"file","key":"${'x'.repeat(100)}"}\n`)
    await expect(Array.fromAsync(positionedLines([long], { key: 'm', maxLineBytes: 50 }))).rejects.toMatchObject({ lineNumber: 1 })
  })
})
