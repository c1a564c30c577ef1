import { describe, expect, it } from 'vitest'
import { InvalidManifestError } from './errors.js'
import { DEFAULT_MAX_LINE_BYTES, isBlankLine, type SplitLinesOptions, splitLines } from './jsonl.js'

/** Every line splitLines yields, flattened. */
async function lines(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: SplitLinesOptions): Promise<string[]> {
  const out: string[] = []
  for await (const batch of splitLines(chunks, options)) out.push(...batch)
  return out
}

/** The bytes cut into chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = []
  for (let i = 0; i < bytes.byteLength; i += size) chunks.push(bytes.subarray(i, i + size))
  return chunks
}

/** Every way of cutting `bytes` in two, plus one-byte chunks. */
function cuts(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], chunked(bytes, 1)]
  for (let i = 1; i < bytes.byteLength; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)])
  return out
}

async function invalid(promise: Promise<unknown>): Promise<InvalidManifestError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidManifestError)
    return error as InvalidManifestError
  }
  throw new Error('expected an InvalidManifestError, nothing was thrown')
}

const enc = (text: string) => new TextEncoder().encode(text)

describe('splitLines', () => {
  it('splits at \\n, with or without a final newline', async () => {
    expect(await lines([enc('a\nb\nc\n')])).toStrictEqual(['a', 'b', 'c'])
    expect(await lines([enc('a\nb\nc')])).toStrictEqual(['a', 'b', 'c'])
  })

  it('yields nothing for an empty source', async () => {
    expect(await lines([])).toStrictEqual([])
    expect(await lines([new Uint8Array(0)])).toStrictEqual([])
  })

  it('keeps blank lines so that callers can count line numbers', async () => {
    expect(await lines([enc('a\n\n  \nb\n\n')])).toStrictEqual(['a', '', '  ', 'b', ''])
  })

  it('leaves the \\r of \\r\\n in the line', async () => {
    expect(await lines([enc('a\r\nb\r\n')])).toStrictEqual(['a\r', 'b\r'])
  })

  it('gives the same lines however the bytes are cut into chunks', async () => {
    const text = '{"kind":"file","key":"ü/名前/😀.wav"}\n\n{"kind":"file","key":"b"}\r\nlast-é'
    const want = ['{"kind":"file","key":"ü/名前/😀.wav"}', '', '{"kind":"file","key":"b"}\r', 'last-é']
    for (const chunks of cuts(enc(text))) expect(await lines(chunks)).toStrictEqual(want)
  })

  it('reassembles multi-byte characters split across 1-byte chunks', async () => {
    const text = 'ü€😀名\nß\n'
    expect(await lines(chunked(enc(text), 1))).toStrictEqual(['ü€😀名', 'ß'])
  })

  it('reads an async iterable source', async () => {
    async function* source() {
      yield enc('a\nb')
      yield enc('c\n')
      yield enc('d')
    }
    expect(await lines(source())).toStrictEqual(['a', 'bc', 'd'])
  })

  it('drops a leading BOM, in one chunk or split over several', async () => {
    const text = '\ufeff{"kind":"file","key":"a"}\n{"kind":"file","key":"b"}\n'
    for (const chunks of cuts(enc(text))) {
      expect(await lines(chunks)).toStrictEqual(['{"kind":"file","key":"a"}', '{"kind":"file","key":"b"}'])
    }
  })

  it('drops a leading BOM on a single line without newline', async () => {
    expect(await lines([enc('\ufeffx')])).toStrictEqual(['x'])
  })

  it('keeps a BOM that is not at the start of the stream', async () => {
    expect(await lines([enc('a\n\ufeffb\n')])).toStrictEqual(['a', '\ufeffb'])
  })

  describe('invalid UTF-8', () => {
    const bad = Buffer.concat([enc('line1\n\nline3\n'), Buffer.from([0x62, 0xff, 0x0a]), enc('line5\n')])

    it('throws InvalidManifestError with the line number, in one chunk', async () => {
      const error = await invalid(lines([bad], { key: 'm.jsonl' }))
      expect(error.key).toBe('m.jsonl')
      expect(error.lineNumber).toBe(4)
      expect(error.reason).toBe('invalid UTF-8')
      expect(error.message).toContain('m.jsonl')
      expect(error.message).toContain('line 4')
    })

    it('gives the same line number however the bytes are cut', async () => {
      for (const chunks of cuts(bad)) {
        const error = await invalid(lines(chunks, { key: 'm.jsonl' }))
        expect(error.lineNumber).toBe(4)
      }
    })

    it('finds a bad last line without newline', async () => {
      const error = await invalid(lines([enc('a\nb\n'), Buffer.from([0x63, 0xc3])], { key: 'k' }))
      expect(error.lineNumber).toBe(3)
    })

    it('finds a truncated multi-byte character on the first line', async () => {
      const error = await invalid(lines([Buffer.from([0xe2, 0x82, 0x0a])], { key: 'k' }))
      expect(error.lineNumber).toBe(1)
    })

    it('rejects an overlong encoding and a lone surrogate', async () => {
      expect((await invalid(lines([Buffer.from([0x0a, 0xc0, 0xaf, 0x0a])]))).lineNumber).toBe(2)
      expect((await invalid(lines([Buffer.from([0x0a, 0x0a, 0xed, 0xa0, 0x80])]))).lineNumber).toBe(3)
    })
  })

  describe('line length limit', () => {
    const max = 100

    it('accepts a line of exactly maxLineBytes', async () => {
      const line = 'x'.repeat(max)
      expect(await lines([enc(`${line}\n${line}`)], { maxLineBytes: max })).toStrictEqual([line, line])
    })

    it('counts bytes, not characters', async () => {
      const line = 'é'.repeat(max / 2) // 2 bytes each: exactly max bytes
      expect(await lines([enc(`${line}\n`)], { maxLineBytes: max })).toStrictEqual([line])
      const error = await invalid(lines([enc(`${line}é\n`)], { maxLineBytes: max, key: 'k' }))
      expect(error.lineNumber).toBe(1)
    })

    it('throws naming the line when the long line arrives in one chunk', async () => {
      const text = `a\n\nb\n${'x'.repeat(max + 1)}\nc\n`
      const error = await invalid(lines([enc(text)], { maxLineBytes: max, key: 'big.jsonl' }))
      expect(error.key).toBe('big.jsonl')
      expect(error.lineNumber).toBe(4)
      expect(error.reason).toBe(`line longer than ${max} bytes`)
      expect(error.message).toContain('big.jsonl')
      expect(error.message).toContain('line 4')
    })

    it('throws naming the line when the long line is the last one, without newline', async () => {
      const error = await invalid(lines([enc(`a\n${'x'.repeat(max + 1)}`)], { maxLineBytes: max, key: 'k' }))
      expect(error.lineNumber).toBe(2)
    })

    it('throws naming the line when the long line arrives across many chunks', async () => {
      const text = `a\nb\n${'x'.repeat(3 * max)}\nc\n`
      for (const size of [1, 7, 64, max + 5]) {
        const error = await invalid(lines(chunked(enc(text), size), { maxLineBytes: max, key: 'k' }))
        expect(error.lineNumber, `chunks of ${size}`).toBe(3)
      }
    })

    it('stops reading a line that never ends as soon as it is too long', async () => {
      let pulled = 0
      function* endless(): Generator<Uint8Array> {
        yield enc('ok\n')
        for (;;) {
          pulled++
          yield enc('y'.repeat(10))
        }
      }
      const error = await invalid(lines(endless(), { maxLineBytes: max, key: 'k' }))
      expect(error.lineNumber).toBe(2)
      expect(pulled).toBeLessThanOrEqual(max / 10 + 1)
    })

    it('defaults to 16 MiB', () => {
      expect(DEFAULT_MAX_LINE_BYTES).toBe(16 * 1024 * 1024)
    })
  })
})

describe('isBlankLine', () => {
  it.each([
    ['', true],
    ['   ', true],
    ['\r', true],
    ['\t \r', true],
    ['{}', false],
    [' {}', false],
    ['\u00a0x', false],
  ])('%j → %j', (line, want) => {
    expect(isBlankLine(line)).toBe(want)
  })
})
