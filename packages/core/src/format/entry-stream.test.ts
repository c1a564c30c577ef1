/**
 * Pure tests of parsing manifest bytes a chunk at a time (`parseLines`, `parseManifest`): bad lines
 * in the middle of a chunk, CRLF and blank lines, lines cut across chunks or longer than a chunk.
 * The same bytes give the same entries and the same error, however they are cut.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchesOf } from './batches.js'
import type { ManifestEntry } from './entries.js'
import { parseLines, parseManifest } from './entry-stream.js'
import { InvalidManifestError } from './errors.js'

const file = (key: string): ManifestEntry => ({ kind: 'file', key })
const line = (key: string) => JSON.stringify(file(key))

/** The bytes cut into chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = []
  for (let i = 0; i < bytes.byteLength; i += size) chunks.push(bytes.subarray(i, i + size))
  return chunks
}

/** The bytes cut at the given offsets. */
function cutAt(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => Math.min(bytes.byteLength, o)))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let start = 0
  for (const point of [...points, bytes.byteLength]) {
    if (point > start) chunks.push(bytes.subarray(start, point))
    start = point
  }
  return chunks
}

/** Every entry parseManifest yields from the chunks, and the error it ends with (if any). */
async function parse(chunks: Uint8Array[], key = 'm.jsonl'): Promise<{ entries: ManifestEntry[]; error: unknown }> {
  const entries: ManifestEntry[] = []
  try {
    for await (const entry of parseManifest(chunks, { key })) entries.push(entry)
  } catch (error) {
    return { entries, error }
  }
  return { entries, error: undefined }
}

describe('parseLines', () => {
  it('parses every line, skipping blank ones', () => {
    expect(parseLines([line('a'), '', '  \t', line('b'), `${line('c')}\r`], 0, 'm.jsonl')).toStrictEqual({
      entries: [file('a'), file('b'), file('c')],
    })
  })

  it('a bad line in the middle: the entries before it, and its error naming its line counted from linesBefore', () => {
    const lines = [line('a'), '', line('b'), '{"kind":"file",', line('c')]
    const { entries, error } = parseLines(lines, 100, 'm.jsonl')
    expect(entries).toStrictEqual([file('a'), file('b')])
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect(error).toMatchObject({ key: 'm.jsonl', lineNumber: 104 })
    expect(error?.reason).toMatch(/invalid JSON/)
  })

  it('an entry that is valid JSON but not an entry stops the parse the same way', () => {
    const { entries, error } = parseLines([line('a'), '{"kind":"file"}', line('b')], 0, 'm.jsonl')
    expect(entries).toStrictEqual([file('a')])
    expect(error).toMatchObject({ lineNumber: 2, reason: "file entry missing 'key'" })
  })

  it('lines that are only valid together are each refused (no line is read as part of another)', () => {
    // Joined by commas these would be valid JSON: each line alone is not.
    const lines = ['{"kind":"file","key":"a","x":[1', '2]}', '{"kind":"file","key":"b"},{"kind":"file","key":"c"}']
    expect(parseLines(lines, 0).error).toMatchObject({ lineNumber: 1 })
    expect(parseLines(lines.slice(1), 1).error).toMatchObject({ lineNumber: 2 })
    expect(parseLines(lines.slice(2), 2).error).toMatchObject({ lineNumber: 3 })
  })

  it('no lines, or only blank ones: no entries and no error', () => {
    expect(parseLines([], 0)).toStrictEqual({ entries: [] })
    expect(parseLines(['', '\r', ' '], 7)).toStrictEqual({ entries: [] })
  })
})

describe('parseManifest, chunk by chunk', () => {
  const good = [line('a'), '', `${line('b')}\r`, '\r', line('c'), line('d')].join('\n')
  const bytes = Buffer.from(`${good}\n`)
  const all = [file('a'), file('b'), file('c'), file('d')]

  it('gives the same entries however the bytes are cut: whole, one byte at a time, every cut in two', async () => {
    expect((await parse([bytes])).entries).toStrictEqual(all)
    expect((await parse(chunked(bytes, 1))).entries).toStrictEqual(all)
    for (let i = 1; i < bytes.byteLength; i++) expect((await parse(cutAt(bytes, [i]))).entries).toStrictEqual(all)
  })

  it('reads a line longer than a chunk (spread over many chunks) and a last line without newline', async () => {
    const long = { kind: 'file', key: `long/${'x'.repeat(5000)}`, meta: { n: 1 } }
    const text = `${line('a')}\n${JSON.stringify(long)}\n${line('z')}`
    expect((await parse(chunked(Buffer.from(text), 64))).entries).toStrictEqual([file('a'), long, file('z')])
  })

  it('a bad line in the middle of a chunk of many: the entries before it come out, then its error with its line', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => line(`k${i}`))
    lines[30] = '{"kind":"file","key":"k30"' // line 31, cut short
    const { entries, error } = await parse([Buffer.from(`${lines.join('\n')}\n`)])
    expect(entries.map((e) => (e as { key: string }).key)).toStrictEqual(Array.from({ length: 30 }, (_, i) => `k${i}`))
    expect(error).toBeInstanceOf(InvalidManifestError)
    expect(error).toMatchObject({ key: 'm.jsonl', lineNumber: 31 })
  })

  it('the bad line is named the same, and the same entries come before it, however the bytes are cut', async () => {
    const lines = ['', line('a'), `${line('b')}\r`, '\r', line('c'), '{"kind":"nope"}', line('d')]
    const text = Buffer.from(`${lines.join('\n')}\n`)
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: text.byteLength - 1 }), { maxLength: 8 }), async (offsets) => {
        const { entries, error } = await parse(cutAt(text, offsets))
        expect(entries).toStrictEqual([file('a'), file('b'), file('c')])
        expect(error).toMatchObject({ lineNumber: 6, reason: 'unknown entry kind: "nope"' })
      }),
    )
  })

  it('gives its entries to a stage in arrays, one per chunk, blank lines counted for line numbers', async () => {
    const chunks = [Buffer.from(`${line('a')}\n\n${line('b')}\n`), Buffer.from(`${line('c')}\n`)]
    const batches: ManifestEntry[][] = []
    for await (const batch of batchesOf(parseManifest(chunks))) batches.push(batch)
    expect(batches).toStrictEqual([[file('a'), file('b')], [file('c')]])
  })

  it('opens nothing until the first entry is asked for, and closes what it opened when left early', async () => {
    const events: string[] = []
    async function* source() {
      try {
        events.push('opened')
        yield Buffer.from(`${line('a')}\n${line('b')}\n`)
        yield Buffer.from(`${line('c')}\n`)
        events.push('read to the end')
      } finally {
        events.push('closed')
      }
    }
    const stream = parseManifest(source())
    expect(events).toStrictEqual([])
    for await (const entry of stream) if ((entry as { key: string }).key === 'a') break
    expect(events).toStrictEqual(['opened', 'closed'])
  })
})
