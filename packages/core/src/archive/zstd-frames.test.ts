/**
 * The zstd frame format on bytes, without a server: the splitter finds every frame boundary of
 * streams made by node:zlib and by the `zstd` tool (content size or not, checksum or not, raw, RLE
 * and compressed blocks, skippable frames), whatever the chunking; the pieces it returns, fed to
 * node:zlib one write each, decode every frame (fed back to back, Node drops all but the first:
 * the bug the splitter exists for); padding frames are skipped by `zstd -d`; broken framing is a
 * `ZstdFrameError`.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants, createZstdDecompress, zstdCompressSync } from 'node:zlib'
import { requireTool } from '@s3exchange/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PADDING_MAGIC, paddingFrame, SKIPPABLE_HEADER_BYTES, ZstdFrameError, ZstdFrameSplitter } from './zstd-frames.js'

const withChecksum = { params: { [constants.ZSTD_c_checksumFlag]: 1 } }

/** Frames of several kinds: checksummed, not, empty, RLE (one repeated byte), raw (random), multi-block. */
function sampleFrames(): { input: Buffer; frame: Buffer }[] {
  const inputs = [
    Buffer.from('hello '),
    Buffer.alloc(0),
    Buffer.alloc(300_000, 0x61), // RLE blocks
    randomBytes(200_000), // raw blocks
    Buffer.from('the quick brown fox '.repeat(20_000)), // compressed, several blocks
  ]
  return inputs.map((input, i) => ({ input, frame: zstdCompressSync(input, i % 2 === 0 ? withChecksum : {}) }))
}

/** Pushes `stream` in chunks of the given sizes (cycled); returns the pieces and the boundaries seen. */
function split(stream: Buffer, sizes: number[]): { pieces: Uint8Array[]; splitter: ZstdFrameSplitter } {
  const splitter = new ZstdFrameSplitter()
  const pieces: Uint8Array[] = []
  for (let at = 0, i = 0; at < stream.byteLength; i++) {
    const next = Math.min(stream.byteLength, at + (sizes[i % sizes.length] as number))
    pieces.push(...splitter.push(stream.subarray(at, next)))
    at = next
  }
  return { pieces, splitter }
}

/** Feeds pieces to one node:zlib decompressor, one write each; resolves to the output. */
async function decompress(pieces: Uint8Array[]): Promise<Buffer> {
  const decompressor = createZstdDecompress()
  const out: Buffer[] = []
  const done = (async () => {
    for await (const chunk of decompressor) out.push(chunk as Buffer)
  })()
  for (const piece of pieces) decompressor.write(piece)
  decompressor.end()
  await done
  return Buffer.concat(out)
}

describe('ZstdFrameSplitter', () => {
  it('cuts at every frame end, leaves skippable frames out, and the pieces decode to every frame', async () => {
    const frames = sampleFrames()
    const stream = Buffer.concat([
      frames[0]?.frame as Buffer,
      paddingFrame(8),
      ...frames.slice(1).map(({ frame }) => frame),
      paddingFrame(100),
    ])
    const expected = Buffer.concat(frames.map(({ input }) => input))
    for (const sizes of [[stream.byteLength], [3, 7, 4096], [65_536]]) {
      const { pieces, splitter } = split(stream, sizes)
      expect(splitter.frames).toBe(frames.length)
      expect(splitter.finish()).toBe(true)
      expect(splitter.boundary).toBe(stream.byteLength)
      // No piece holds bytes of two frames, and the padding's bytes are not in any.
      expect(pieces.reduce((sum, piece) => sum + piece.byteLength, 0)).toBe(stream.byteLength - 108)
      expect((await decompress(pieces)).equals(expected), `chunks of ${sizes}`).toBe(true)
    }
  })

  it('byte by byte: every header field may span chunks', async () => {
    const parts = [Buffer.from('x'.repeat(300)), Buffer.from('yz')]
    const stream = Buffer.concat([
      paddingFrame(9),
      zstdCompressSync(parts[0] as Buffer, withChecksum),
      paddingFrame(8),
      zstdCompressSync(parts[1] as Buffer),
    ])
    const { pieces, splitter } = split(stream, [1])
    expect(splitter.frames).toBe(2)
    expect(splitter.finish()).toBe(true)
    expect((await decompress(pieces)).toString()).toBe(`${'x'.repeat(300)}yz`)
  })

  it('handed back to back in one write, node:zlib decodes only the first frame (why the splitter exists)', async () => {
    const [a, b] = [zstdCompressSync(Buffer.from('first ')), zstdCompressSync(Buffer.from('second'))]
    const joined = await decompress([Buffer.concat([a, b])])
    // If a Node version fixes nodejs/node#64741 this becomes 'first second': the splitter stays correct either way.
    expect(['first ', 'first second']).toContain(joined.toString())
    const { pieces } = split(Buffer.concat([a, b]), [1 << 20])
    expect((await decompress(pieces)).toString()).toBe('first second')
  })

  it('any chunking of any sequence of frames: the same boundaries (property)', () => {
    const frames = sampleFrames().map(({ frame }) => frame)
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.constantFrom(...frames.keys()),
            fc.integer({ min: 8, max: 40 }).map((n) => -n),
          ),
          { maxLength: 8 },
        ),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 5 }),
        (sequence, sizes) => {
          // Non-negative: a data frame by index; negative: a padding frame of that many bytes.
          const parts = sequence.map((n) => (n >= 0 ? (frames[n] as Buffer) : paddingFrame(-n)))
          const stream = Buffer.concat(parts)
          const { pieces, splitter } = split(stream, sizes)
          expect(splitter.frames).toBe(sequence.filter((n) => n >= 0).length)
          expect(splitter.finish()).toBe(true)
          expect(Buffer.concat(pieces).equals(Buffer.concat(parts.filter((_, i) => (sequence[i] as number) >= 0)))).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('a stream cut inside a frame does not end on a boundary; boundary says where the whole frames end', () => {
    const [a, b] = sampleFrames().map(({ frame }) => frame) as [Buffer, Buffer]
    const stream = Buffer.concat([a, paddingFrame(20), b])
    for (const cut of [a.byteLength + 3, a.byteLength + 20 + 2, stream.byteLength - 1]) {
      const { splitter } = split(stream.subarray(0, cut), [5])
      expect(splitter.finish(), `cut at ${cut}`).toBe(false)
      expect(splitter.boundary).toBe(cut >= a.byteLength + 20 ? a.byteLength + 20 : a.byteLength)
    }
  })

  it('bytes that are not a frame, a reserved header bit or block type: ZstdFrameError with the offset', () => {
    const frame = zstdCompressSync(Buffer.from('data'))
    expect(() => new ZstdFrameSplitter().push(Buffer.concat([frame, Buffer.from('garbage!')]))).toThrow(
      new ZstdFrameError(`corrupt zstd stream (no zstd frame starts at byte ${frame.byteLength})`),
    )
    const reservedBit = Buffer.from(frame)
    reservedBit[4] = (reservedBit[4] as number) | 0x08
    expect(() => new ZstdFrameSplitter().push(reservedBit)).toThrow(/reserved bit set in the frame header at byte 0/)
    // The first block header follows the magic, the descriptor and (for this frame) the 1-byte content size.
    const reservedBlock = Buffer.from(frame)
    const blockAt = 4 + 1 + 1
    reservedBlock[blockAt] = (reservedBlock[blockAt] as number) | 0b110
    expect(() => new ZstdFrameSplitter().push(reservedBlock)).toThrow(/reserved block type/)
  })
})

describe('paddingFrame', () => {
  it('is a skippable frame of exactly the size asked, which the zstd tool skips', () => {
    requireTool('zstd', { install: 'apt-get install zstd' })
    for (const size of [8, 9, 100, 65_536]) {
      const padding = paddingFrame(size)
      expect(padding.byteLength).toBe(size)
      expect(padding.readUInt32LE(0)).toBe(PADDING_MAGIC)
      expect(padding.readUInt32LE(4)).toBe(size - SKIPPABLE_HEADER_BYTES)
      const stream = Buffer.concat([zstdCompressSync(Buffer.from('a')), padding, zstdCompressSync(Buffer.from('b'))])
      expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: stream }).toString()).toBe('ab')
    }
  })

  it('refuses fewer than 8 bytes', () => {
    for (const size of [0, 7, 7.5, -1]) expect(() => paddingFrame(size)).toThrow(RangeError)
  })
})

describe('streams made by the zstd tool', () => {
  it('multi-frame output of zstd (frames appended with cat): split and decoded whole', async () => {
    requireTool('zstd', { install: 'apt-get install zstd' })
    const parts = [Buffer.from('one '.repeat(1000)), randomBytes(50_000), Buffer.from('three')]
    const frames = parts.map((part) => execFileSync('zstd', ['-c', '-q', '--no-check'], { input: part }))
    const stream = Buffer.concat(frames)
    const { pieces, splitter } = split(stream, [4093])
    expect(splitter.frames).toBe(3)
    expect((await decompress(pieces)).equals(Buffer.concat(parts))).toBe(true)
  })
})
