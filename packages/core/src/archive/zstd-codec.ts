/**
 * zstd from `node:zlib`, looked up when an archive needs it: Node has `createZstdCompress`,
 * `createZstdDecompress` and `zstdCompressSync` from 22.15 (and 23.8) only, and the packages
 * support 22.12, where a named import of them would fail the whole module. Without them, reading
 * a zstd archive is an `UnsupportedCompressionError` and writing one a `ShardWriteError`, each
 * naming the archive; nothing else is affected.
 *
 * `FrameCompressor` writes the frames of a seekable `.tar.zst`: each one independent (a frame per
 * group of small members, or per large member), with its checksum, so that it can be fetched
 * with one ranged GET and decompressed alone.
 *
 * @example
 * ```ts
 * import { FrameCompressor, zstdFor } from '@s3exchange/core/internals'
 *
 * const frames = new FrameCompressor(zstdFor('write', archiveKey), (chunk) => out.write(chunk), 3)
 * const where = await frames.segment([header, data, padding]) // { offset, size } in the compressed body
 * ```
 */
import type { Transform } from 'node:stream'
import * as zlib from 'node:zlib'
import { ShardWriteError, UnsupportedCompressionError } from '../format/errors.js'
import type { Segment } from './gzip-stitch.js'
import { compressInto } from './stream-compressor.js'

/** What this library uses of `node:zlib`'s zstd. */
export interface ZstdFunctions {
  createZstdCompress: typeof zlib.createZstdCompress
  createZstdDecompress: typeof zlib.createZstdDecompress
  zstdCompressSync: typeof zlib.zstdCompressSync
  constants: Pick<typeof zlib.constants, 'ZSTD_c_compressionLevel' | 'ZSTD_c_checksumFlag'>
}

/**
 * Where the zstd functions are looked up: `node:zlib` itself. Tests replace `zlib` with an object
 * that lacks them to play a Node older than 22.15; nothing else should.
 */
export const zstdLookup: { zlib: Partial<ZstdFunctions> } = { zlib: zlib as Partial<ZstdFunctions> }

/** The zstd level this library writes with by default (zstd's own default). */
export const DEFAULT_ZSTD_LEVEL = 3

/**
 * node:zlib's zstd functions, or a typed error naming the archive when this Node has none:
 * `UnsupportedCompressionError` (a `ShardReadError`) to read, `ShardWriteError` to write.
 */
export function zstdFor(purpose: 'read' | 'write', archiveKey: string): ZstdFunctions {
  const found = zstdLookup.zlib
  if (
    typeof found.createZstdCompress === 'function' &&
    typeof found.createZstdDecompress === 'function' &&
    typeof found.zstdCompressSync === 'function' &&
    typeof found.constants?.ZSTD_c_checksumFlag === 'number'
  ) {
    return found as ZstdFunctions
  }
  const need = `zstd compression needs node:zlib's ${purpose === 'read' ? 'createZstdDecompress' : 'createZstdCompress'} (Node 22.15 or later); this is Node ${process.versions.node}`
  if (purpose === 'read') throw new UnsupportedCompressionError(need, { archiveKey, compression: 'zstd' })
  throw new ShardWriteError(`${need}: write gzip (the default) or a plain tar instead`, { archiveKey })
}

/** The compressor parameters: the level, and a checksum in every frame (as the `zstd` tool writes). */
function params(zstd: ZstdFunctions, level: number): Record<number, number> {
  return { [zstd.constants.ZSTD_c_compressionLevel]: level, [zstd.constants.ZSTD_c_checksumFlag]: 1 }
}

/** A zstd compressor for one frame streamed from many writes (`pledgedSrcSize`: its exact size, recorded in the frame header). */
export function createFrameCompressor(zstd: ZstdFunctions, level: number, pledgedSrcSize?: number): Transform {
  return zstd.createZstdCompress({
    chunkSize: 64 * 1024,
    params: params(zstd, level),
    ...(pledgedSrcSize === undefined ? {} : { pledgedSrcSize }),
  })
}

/**
 * Compresses a body as independent zstd frames and hands them to `output`; says where each frame
 * went, counted from the start of the body (the same surface as gzip's `SegmentDeflater`).
 */
export class FrameCompressor {
  readonly #zstd: ZstdFunctions
  readonly #output: (chunk: Buffer) => Promise<void>
  readonly #level: number
  #compressed = 0
  #current: Transform | undefined

  constructor(zstd: ZstdFunctions, output: (chunk: Buffer) => Promise<void>, level: number) {
    this.#zstd = zstd
    this.#output = output
    this.#level = level
  }

  /** Compresses `parts` (in memory) as one frame. */
  async segment(parts: Uint8Array[]): Promise<Segment> {
    const frame = compressFrame(this.#zstd, parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts), this.#level)
    const offset = this.#compressed
    this.#compressed += frame.byteLength
    await this.#output(frame)
    return { offset, size: frame.byteLength }
  }

  /** Compresses `size` bytes streamed from `parts` as one frame (for members too large to hold in memory). */
  async streamSegment(parts: AsyncIterable<Uint8Array>, size: number): Promise<Segment> {
    const offset = this.#compressed
    const compress = createFrameCompressor(this.#zstd, this.#level, size)
    this.#current = compress
    try {
      this.#compressed += await compressInto(compress, parts, this.#output)
    } finally {
      this.#current = undefined
    }
    return { offset, size: this.#compressed - offset }
  }

  destroy(): void {
    this.#current?.destroy()
  }
}

/** One zstd frame of `input`, with its content size and checksum. */
export function compressFrame(zstd: ZstdFunctions, input: Uint8Array, level: number): Buffer {
  return zstd.zstdCompressSync(input, { params: params(zstd, level) })
}
