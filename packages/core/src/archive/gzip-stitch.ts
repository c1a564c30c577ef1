/**
 * One gzip member written in two pieces, out of order: the body is deflated as it streams, and a
 * head known only at the end (a shard's internal manifest) is deflated separately and placed in
 * front of it. The result is a single standard gzip member (RFC 1952), which every reader handles,
 * including streaming ones such as Python's `tarfile` in `r|gz` mode (which stops after the first
 * member of a multi-member file):
 *
 *     gzip header · deflate(head, ended by a sync flush) · deflate(body, final) · CRC-32 · ISIZE
 *
 * A sync flush ends the head's deflate data on a byte boundary without a final block, so the body's
 * blocks simply follow; the body's compressor never refers back into the head. The CRC-32 of head
 * and body together is combined from their separate CRCs (zlib's `crc32_combine`).
 *
 * @example
 * ```ts
 * import { BodyDeflater, gzipHead, gzipTrailer } from '@s3exchange/core'
 *
 * const body = new BodyDeflater((chunk) => out.write(chunk), 6)
 * await body.write(Buffer.from('world'))
 * const { crc, length } = await body.end()
 * const head = Buffer.from('hello ')
 * // out: gzipHead(head, 6) + <body chunks> + gzipTrailer(head, crc, length) is one gzip member of 'hello world'
 * ```
 */
import { constants, createDeflateRaw, type DeflateRaw, deflateRawSync, crc32 as nativeCrc32 } from 'node:zlib'
import { compressInto, StreamCompressor } from './stream-compressor.js'

/** The 10-byte gzip header: deflate, no name, mtime 0, OS Unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03])

/** The gzip header and the head's deflate data, ended by a sync flush (not final). */
export function gzipHead(head: Uint8Array, level: number): Buffer {
  return Buffer.concat([GZIP_HEADER, deflateHead(head, level)])
}

/** The head's deflate data, ended by a sync flush (byte-aligned, not final). */
export function deflateHead(head: Uint8Array, level: number): Buffer {
  return deflateRawSync(head, { level, finishFlush: constants.Z_SYNC_FLUSH })
}

/**
 * Deflate blocks that decode to nothing and take exactly `bytes` bytes, to be placed after a sync
 * flush (byte-aligned) and followed by more blocks: empty stored blocks (5 bytes each) and empty
 * fixed-Huffman blocks (10 bits each) closed by an empty stored block to re-align. Any length of 0,
 * 5, 6, 7 or 9 and more can be made. It lets a seekable shard's compressed manifest end exactly where
 * its members were said to start, with a plain gzip header that every reader, streaming ones
 * included, reads (Python's streaming `tarfile` mishandles header extra fields).
 */
export function deflatePadding(bytes: number): Buffer {
  if (!Number.isInteger(bytes) || bytes < 0 || (bytes > 0 && bytes < 5) || bytes === 8) {
    throw new RangeError(`deflate padding cannot take ${bytes} bytes`)
  }
  const chunks: Buffer[] = []
  let left = bytes
  while (left > 0) {
    // A chunk whose rest can still be made: 5, 6, 7 or 9 bytes.
    const size = [5, 6, 7, 9].find((c) => c <= left && (left - c === 0 || left - c >= 9 || [5, 6, 7].includes(left - c))) as number
    chunks.push(emptyBlocks(size === 5 ? 0 : size === 6 ? 1 : size === 7 ? 2 : 3))
    left -= size
  }
  return Buffer.concat(chunks)
}

/** `fixed` empty fixed-Huffman blocks, then an empty stored block (byte-aligned at both ends). */
function emptyBlocks(fixed: number): Buffer {
  const bits: number[] = []
  for (let i = 0; i < fixed; i++) bits.push(0, 1, 0, 0, 0, 0, 0, 0, 0, 0) // BFINAL 0, BTYPE 01 (LSB first), end-of-block: 7 zero bits
  bits.push(0, 0, 0) // BFINAL 0, BTYPE 00: stored
  while (bits.length % 8 !== 0) bits.push(0)
  const head = Buffer.alloc(bits.length / 8)
  for (let i = 0; i < bits.length; i++) if (bits[i]) head[i >> 3] = (head[i >> 3] as number) | (1 << (i & 7))
  return Buffer.concat([head, Buffer.from([0x00, 0x00, 0xff, 0xff])]) // LEN 0, NLEN 0xffff
}

/** Bytes of the plain gzip header. */
export const GZIP_HEADER_BYTES = GZIP_HEADER.byteLength

/** The 10-byte gzip header this library writes (deflate, mtime 0, OS Unix). */
export function gzipHeader(): Buffer {
  return Buffer.from(GZIP_HEADER)
}

/** The gzip trailer for head + body: CRC-32 and length (mod 2^32) of all the uncompressed bytes. */
export function gzipTrailer(head: Uint8Array, bodyCrc: number, bodyLength: number): Buffer {
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc32Combine(crc32(head, 0), bodyCrc, bodyLength), 0)
  trailer.writeUInt32LE((head.byteLength + bodyLength) % 2 ** 32, 4)
  return trailer
}

/** Deflates a body as it streams, handing compressed chunks to `output` with backpressure. */
export class BodyDeflater {
  readonly #stream: StreamCompressor
  #crc = 0
  #length = 0

  constructor(output: (chunk: Buffer) => Promise<void>, level: number) {
    this.#stream = new StreamCompressor(output, createDeflateRaw({ level, chunkSize: 64 * 1024 }))
  }

  /** Uncompressed bytes written so far. */
  get length(): number {
    return this.#length
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#crc = crc32(bytes, this.#crc)
    this.#length += bytes.byteLength
    await this.#stream.write(bytes)
  }

  /** Finishes the deflate stream (final block) and resolves to the body's CRC-32 and length. */
  async end(): Promise<{ crc: number; length: number }> {
    await this.#stream.end()
    return { crc: this.#crc, length: this.#length }
  }

  destroy(): void {
    this.#stream.destroy()
  }
}

/** Where a segment of a {@link SegmentDeflater} lies in the compressed body. */
export interface Segment {
  /** Offset of the segment's first compressed byte, from the start of the body. */
  offset: number
  /** Its compressed length. */
  size: number
}

/**
 * Deflates a body as independent segments: each starts with an empty window and ends with a full
 * flush (byte-aligned), so a segment can be inflated on its own from its compressed offset, while
 * the segments together stay one deflate stream (the last one is final). This is what makes a
 * gzip shard seekable: one segment per member.
 */
export class SegmentDeflater {
  readonly #output: (chunk: Buffer) => Promise<void>
  readonly #level: number
  #crc = 0
  #length = 0
  #compressed = 0
  #current: DeflateRaw | undefined

  constructor(output: (chunk: Buffer) => Promise<void>, level: number) {
    this.#output = output
    this.#level = level
  }

  /** Uncompressed bytes written so far. */
  get length(): number {
    return this.#length
  }

  /** Writes one segment made of `parts` (in memory) and says where it went. */
  async segment(parts: Uint8Array[], final = false): Promise<Segment> {
    const input = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts)
    this.#crc = crc32(input, this.#crc)
    this.#length += input.byteLength
    const offset = this.#compressed
    const output = deflateRawSync(input, { level: this.#level, finishFlush: final ? constants.Z_FINISH : constants.Z_FULL_FLUSH })
    this.#compressed += output.byteLength
    await this.#output(output)
    return { offset, size: output.byteLength }
  }

  /** Writes one segment streamed from `parts` (for members too large to hold in memory). */
  async streamSegment(parts: AsyncIterable<Uint8Array>): Promise<Segment> {
    const offset = this.#compressed
    const deflate = createDeflateRaw({ level: this.#level, chunkSize: 64 * 1024, finishFlush: constants.Z_FULL_FLUSH })
    this.#current = deflate
    const self = this
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const part of parts) {
        self.#crc = crc32(part, self.#crc)
        self.#length += part.byteLength
        yield part
      }
    }
    try {
      this.#compressed += await compressInto(deflate, counted(), this.#output)
    } finally {
      this.#current = undefined
    }
    return { offset, size: this.#compressed - offset }
  }

  /** The body's CRC-32 and length, once the final segment is written. */
  result(): { crc: number; length: number } {
    return { crc: this.#crc, length: this.#length }
  }

  destroy(): void {
    this.#current?.destroy()
  }
}

/** CRC-32 (the gzip one) of `data`, continuing from `crc`. */
export function crc32(data: Uint8Array, crc = 0): number {
  return typeof nativeCrc32 === 'function' ? nativeCrc32(data, crc) : softCrc32(data, crc)
}

let table: Uint32Array | undefined
function softCrc32(data: Uint8Array, crc: number): number {
  if (table === undefined) {
    table = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      table[n] = c >>> 0
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0
  for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** The CRC-32 of A followed by B, from crc(A), crc(B) and B's length (zlib's `crc32_combine`). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0
  const even = new Uint32Array(32)
  const odd = new Uint32Array(32)
  odd[0] = 0xedb88320 // the CRC-32 polynomial, as the operator for one zero bit
  let row = 1
  for (let n = 1; n < 32; n++) {
    odd[n] = row
    row <<= 1
  }
  square(even, odd) // two zero bits
  square(odd, even) // four zero bits
  let a = crcA >>> 0
  let length = lengthB
  do {
    square(even, odd)
    if (length % 2 === 1) a = times(even, a)
    length = Math.floor(length / 2)
    if (length === 0) break
    square(odd, even)
    if (length % 2 === 1) a = times(odd, a)
    length = Math.floor(length / 2)
  } while (length !== 0)
  return (a ^ crcB) >>> 0
}

function times(matrix: Uint32Array, vector: number): number {
  let sum = 0
  let v = vector >>> 0
  for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) sum ^= matrix[i] as number
  return sum >>> 0
}

function square(result: Uint32Array, matrix: Uint32Array): void {
  for (let n = 0; n < 32; n++) result[n] = times(matrix, matrix[n] as number)
}
