/**
 * The zstd frame format (RFC 8878, section 3.1), as far as a seekable `.tar.zst` needs it: where
 * frames begin and end in a stream of bytes, and skippable frames that pad the archive's head.
 *
 * A zstd stream is a sequence of frames: data frames (magic `28 b5 2f fd`: a header, blocks, an
 * optional checksum) and skippable frames (magic `5X 2a 4d 18`, a 4-byte length, that many bytes
 * of anything), which decoders skip. Concatenated frames are one valid stream: `zstd -d` and
 * `tar --zstd` read them as one. Node's zstd decompressor does not: given frames back to back in
 * one write it stops after the first and drops the rest (nodejs/node#64741). `ZstdFrameSplitter`
 * cuts a stream at frame boundaries, so that each write handed to the decompressor holds bytes of
 * one data frame only (skippable frames are dropped), and says whether the stream ended inside a
 * frame.
 *
 * @example
 * ```ts
 * import { ZstdFrameSplitter } from '@s3exchange/core/internals'
 *
 * const splitter = new ZstdFrameSplitter()
 * for await (const chunk of source) for (const piece of splitter.push(chunk)) decompressor.write(piece)
 * if (!splitter.finish()) throw new Error('truncated zstd stream')
 * ```
 */

/** The magic number that opens a zstd data frame (little-endian on the wire: `28 b5 2f fd`). */
export const ZSTD_MAGIC = 0xfd2fb528
/** Skippable frames have magic numbers 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC_MASK = 0xfffffff0
const SKIPPABLE_MAGIC = 0x184d2a50
/**
 * The skippable frame this library pads a shard's head with: 0x184D2A53. (0x184D2A50 is what
 * `pzstd` puts before its frames, 0x184D2A5E the seek table of zstd's contrib seekable format.)
 */
export const PADDING_MAGIC = 0x184d2a53
/** Bytes of a skippable frame's header: magic and length. */
export const SKIPPABLE_HEADER_BYTES = 8

/** The framing of a zstd stream is broken: bytes where a frame should start are not one, a reserved value. */
export class ZstdFrameError extends Error {
  override name = 'ZstdFrameError'
}

/**
 * A skippable frame of exactly `bytes` bytes (its 8-byte header included, so at least 8): every
 * zstd decoder skips it. It pads a seekable shard's compressed head so that the member frames
 * start where the internal manifest says.
 */
export function paddingFrame(bytes: number): Buffer {
  if (!Number.isSafeInteger(bytes) || bytes < SKIPPABLE_HEADER_BYTES || bytes - SKIPPABLE_HEADER_BYTES > 0xffffffff) {
    throw new RangeError(`a skippable zstd frame cannot take ${bytes} bytes (at least ${SKIPPABLE_HEADER_BYTES})`)
  }
  const frame = Buffer.alloc(bytes)
  frame.writeUInt32LE(PADDING_MAGIC, 0)
  frame.writeUInt32LE(bytes - SKIPPABLE_HEADER_BYTES, 4)
  return frame
}

type State = 'magic' | 'skippable-size' | 'skippable-data' | 'descriptor' | 'frame-header' | 'block-header' | 'block-data' | 'checksum'

/**
 * Cuts a zstd stream, pushed chunk by chunk, at frame boundaries: `push` returns the pieces of
 * data frames in the chunk, none of which holds bytes of two frames (skippable frames are left
 * out). Reads only the framing (frame headers and block headers), never the compressed data.
 * Throws `ZstdFrameError` where the bytes are not a frame.
 */
export class ZstdFrameSplitter {
  #state: State = 'magic'
  /** The header field being collected (it may span chunks). */
  readonly #field = Buffer.alloc(18)
  #fieldLength = 0
  #fieldNeed = 4
  /** Bytes left of the current block, checksum or skippable frame. */
  #left = 0
  #checksum = false
  #lastBlock = false
  /** Offset in the whole stream of the next byte pushed, and of the frame being read. */
  #offset = 0
  #frameStart = 0
  #frames = 0
  #boundary = 0

  /** Complete data frames seen so far. */
  get frames(): number {
    return this.#frames
  }

  /** Bytes from the start of the stream up to the end of the last whole frame (data or skippable). */
  get boundary(): number {
    return this.#boundary
  }

  /** True when the bytes so far end on a frame boundary. */
  get atBoundary(): boolean {
    return this.#state === 'magic' && this.#fieldLength === 0
  }

  /** The pieces of data frames in `chunk`, in order, each within one frame. */
  push(chunk: Uint8Array): Uint8Array[] {
    const pieces: Uint8Array[] = []
    let p = 0
    // Start of the current data frame's bytes in this chunk (-1: not in a data frame).
    let start = this.#inDataFrame() ? 0 : -1
    while (p < chunk.byteLength) {
      switch (this.#state) {
        case 'magic': {
          const at = p
          p = this.#collect(chunk, p)
          if (this.#fieldLength < this.#fieldNeed) break
          const magic = this.#field.readUInt32LE(0)
          this.#frameStart = this.#offset + at - (4 - (p - at))
          if (magic === ZSTD_MAGIC) {
            // The magic's bytes belong to the frame: those from this chunk by position, earlier ones copied.
            const inChunk = p - at
            if (inChunk < 4) pieces.push(Buffer.from(this.#field.subarray(0, 4 - inChunk)))
            start = at
            this.#expect('descriptor', 1)
          } else if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
            this.#expect('skippable-size', 4)
          } else {
            throw new ZstdFrameError(`corrupt zstd stream (no zstd frame starts at byte ${this.#frameStart})`)
          }
          break
        }
        case 'skippable-size':
          p = this.#collect(chunk, p)
          if (this.#fieldLength < this.#fieldNeed) break
          this.#left = this.#field.readUInt32LE(0)
          this.#state = 'skippable-data'
          if (this.#left === 0) this.#expect('magic', 4)
          break
        case 'skippable-data': {
          const take = Math.min(this.#left, chunk.byteLength - p)
          p += take
          this.#left -= take
          if (this.#left === 0) this.#expect('magic', 4)
          break
        }
        case 'descriptor': {
          p = this.#collect(chunk, p)
          if (this.#fieldLength < this.#fieldNeed) break
          const descriptor = this.#field[0] as number
          if (descriptor & 0x08) {
            throw new ZstdFrameError(`corrupt zstd stream (reserved bit set in the frame header at byte ${this.#frameStart})`)
          }
          const singleSegment = (descriptor >> 5) & 1
          const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] as number
          const dictionaryBytes = [0, 1, 2, 4][descriptor & 3] as number
          this.#checksum = ((descriptor >> 2) & 1) === 1
          const rest = (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes
          if (rest === 0) this.#expect('block-header', 3)
          else this.#expect('frame-header', rest)
          break
        }
        case 'frame-header':
          p = this.#collect(chunk, p)
          if (this.#fieldLength === this.#fieldNeed) this.#expect('block-header', 3)
          break
        case 'block-header': {
          p = this.#collect(chunk, p)
          if (this.#fieldLength < this.#fieldNeed) break
          const header = this.#field.readUIntLE(0, 3)
          const type = (header >> 1) & 3
          if (type === 3) throw new ZstdFrameError(`corrupt zstd stream (reserved block type in the frame at byte ${this.#frameStart})`)
          this.#lastBlock = (header & 1) === 1
          // Raw and compressed blocks hold Block_Size bytes; an RLE block one byte.
          this.#left = type === 1 ? 1 : header >>> 3
          this.#state = 'block-data'
          if (this.#left === 0) this.#afterBlock()
          break
        }
        case 'block-data':
        case 'checksum': {
          const take = Math.min(this.#left, chunk.byteLength - p)
          p += take
          this.#left -= take
          if (this.#left > 0) break
          if (this.#state === 'block-data') this.#afterBlock()
          else this.#endFrame()
          break
        }
      }
      if (this.#state === 'magic' && this.#fieldLength === 0) {
        this.#boundary = this.#offset + p
        if (start >= 0) {
          // The data frame ended at p.
          pieces.push(chunk.subarray(start, p))
          start = -1
        }
      }
    }
    if (start >= 0 && p > start) pieces.push(chunk.subarray(start, p))
    this.#offset += chunk.byteLength
    return pieces
  }

  /** Ends the stream: true when it ended on a frame boundary, false when inside a frame. */
  finish(): boolean {
    return this.atBoundary
  }

  #inDataFrame(): boolean {
    return this.#state !== 'magic' && this.#state !== 'skippable-size' && this.#state !== 'skippable-data'
  }

  #expect(state: State, bytes: number): void {
    this.#state = state
    this.#fieldLength = 0
    this.#fieldNeed = bytes
  }

  /** Copies bytes of the current header field; returns the new position. */
  #collect(chunk: Uint8Array, p: number): number {
    const take = Math.min(this.#fieldNeed - this.#fieldLength, chunk.byteLength - p)
    this.#field.set(chunk.subarray(p, p + take), this.#fieldLength)
    this.#fieldLength += take
    return p + take
  }

  #afterBlock(): void {
    if (!this.#lastBlock) this.#expect('block-header', 3)
    else if (this.#checksum) {
      this.#state = 'checksum'
      this.#left = 4
    } else this.#endFrame()
  }

  #endFrame(): void {
    this.#frames++
    this.#expect('magic', 4)
  }
}
