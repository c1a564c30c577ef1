/**
 * Streams the members of a tar archive, plain, gzip or zstd (the compression is recognised from the
 * first bytes, whatever the key or the entry says), through node:zlib and tar-stream. Memory stays
 * flat whatever the archive size: one chunk and one member header at a time. Every failure
 * (not a tar, truncated, corrupt gzip or zstd, a connection cut) is a `ShardReadError` naming the
 * archive and, when there is one, the member. zstd input is cut at frame boundaries before it
 * reaches node:zlib (see `zstd-frames.ts`), so archives of many frames read whole.
 *
 * @example
 * ```ts
 * import { getObjectBody, readTarMembers } from '@s3exchange/core'
 *
 * const archive = await getObjectBody(ctx, 'shards/shard-00000.tar.gz')
 * for await (const member of readTarMembers(archive, { archiveKey: 'shards/shard-00000.tar.gz' })) {
 *   console.log(member.name, member.type, member.size)   // unread members are skipped
 * }
 * ```
 */
import type { Readable, Transform } from 'node:stream'
import * as zlib from 'node:zlib'
import { extract as createExtract, type Extract, type Header } from 'tar-stream'
import type { FileEntry } from '../format/entries.js'
import { isAbort, S3ExchangeError, ShardReadError, UnsupportedCompressionError } from '../format/errors.js'
import { type ByteSource, ObjectBody } from '../s3/body.js'
import { drained } from './drained.js'
import { zstdFor } from './zstd-codec.js'
import { ZstdFrameError, ZstdFrameSplitter } from './zstd-frames.js'

/** The stream of one member's data, as tar-stream hands it out (a streamx Readable). */
export type TarEntryStream = ByteSource & AsyncIterable<Uint8Array> & { readonly destroyed: boolean }

/** One member of a tar archive, as it streams past. */
export interface TarMember {
  /** Path inside the archive (pax and GNU long names applied). */
  name: string
  /** tar-stream's type: `file`, `directory`, `symlink`, `link`, ... */
  type: string
  /** Size of the data in bytes, from the header. */
  size: number
  /** Target of a link member. */
  linkname: string | null
  /** Offset of the member's data in the uncompressed tar stream. */
  dataOffset: number
  /**
   * The data. Read it before asking for the next member, or it is skipped. Destroying it before
   * its end ends the archive: asking for the next member then throws `ShardReadError`.
   */
  stream: TarEntryStream
}

/** Options for {@link readTarMembers}. */
export interface ReadTarOptions {
  /** The archive's key, for error messages. */
  archiveKey: string
  /** Stops reading when it fires. */
  signal?: AbortSignal | undefined
  /**
   * The source is one raw-deflate segment of a seekable gzip shard (a ranged read): inflate it
   * without a gzip header, and do not expect it to end the deflate stream. Default false.
   */
  rawDeflate?: boolean
  /** Told the compression found in the first bytes (before the first member is yielded). */
  onCompression?: (compression: SniffedCompression) => void
}

/** The compression recognised from an archive's first bytes. */
export type SniffedCompression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | null

/**
 * Recognises gzip, zstd (a data frame, or a skippable frame first), bzip2 and xz by their magic
 * bytes; anything else is taken as a plain tar.
 */
export function sniffCompression(head: Uint8Array): SniffedCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd'
  if (((head[0] as number) & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd'
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2'
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a) return 'xz'
  return null
}

/** True for the member types that hold data (regular and contiguous files). */
export function isRegularFile(member: { type: string }): boolean {
  return member.type === 'file' || member.type === 'contiguous-file'
}

/**
 * Yields the members of the archive read from `source`, in archive order. A member whose stream
 * was not read to the end when the next one is asked for is skipped (drained). Breaking out of
 * the loop destroys `source`.
 */
export async function* readTarMembers(source: Readable, options: ReadTarOptions): AsyncGenerator<TarMember> {
  const { archiveKey } = options
  // allowUnknownFormat: also read pre-POSIX (v7) headers, as Python's tarfile does.
  const extract = createExtract({ allowUnknownFormat: true } as never)
  let current: TarMember | undefined
  let failure: unknown
  const fail = (error: unknown) => {
    failure ??= error
    extract.destroy(error as Error)
  }
  const pumping = pump(source, extract, archiveKey, options.rawDeflate ?? false, options.onCompression).catch(fail)
  try {
    for await (const stream of extract) {
      options.signal?.throwIfAborted()
      const header = stream.header as Header & { byteOffset?: number }
      // tar-stream reads a base-256 size field that starts with neither 0x80 nor 0xff as null and
      // then waits forever for the member's data: a corrupt header, say so.
      if (typeof header.size !== 'number' || !(header.size >= 0)) {
        throw new ShardReadError(`not a tar archive, or corrupt (invalid size field in the header of ${JSON.stringify(header.name)})`, {
          archiveKey,
          memberPath: header.name,
        })
      }
      current = {
        name: header.name,
        type: header.type ?? 'file',
        size: header.size,
        linkname: header.linkname ?? null,
        dataOffset: header.byteOffset ?? 0,
        stream: stream as unknown as TarEntryStream,
      }
      // tar-stream closes the whole archive when a member's stream is destroyed before its end
      // (e.g. a `break` out of `for await (const chunk of member.stream)`); its iterator would then
      // wait forever, so say so instead.
      let memberEnded = false
      let memberFailed = false
      stream.once('end', () => {
        memberEnded = true
      })
      stream.once('error', () => {
        memberFailed = true
      })
      yield current
      if (!stream.destroyed) stream.resume()
      else if (!memberEnded && !memberFailed && failure === undefined) {
        throw new ShardReadError('the stream of the member was destroyed before its end; the rest of the archive cannot be read', {
          archiveKey,
          memberPath: current.name,
        })
      }
      current = undefined
    }
    await pumping
    if (failure) throw failure
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason ?? error
    throw toShardReadError(failure ?? error, archiveKey, current?.name)
  } finally {
    if (!source.destroyed) source.destroy()
    if (!extract.destroyed) extract.destroy()
  }
}

async function pump(
  source: Readable,
  extract: Extract,
  archiveKey: string,
  rawDeflate: boolean,
  onCompression: ((compression: SniffedCompression) => void) | undefined,
): Promise<void> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let first = await chunks.next()
  // Enough bytes to recognise the compression (a network chunk almost always has them).
  let head: Buffer = first.done ? Buffer.alloc(0) : first.value
  while (!first.done && head.byteLength < 6) {
    first = await chunks.next()
    if (!first.done) head = Buffer.concat([head, first.value])
  }
  if (head.byteLength === 0) throw new ShardReadError('the archive is empty (0 bytes)', { archiveKey })
  const compression = rawDeflate ? 'raw-deflate' : sniffCompression(head)
  if (compression !== 'raw-deflate') onCompression?.(compression)
  const decompressor =
    compression === 'raw-deflate'
      ? zlib.createInflateRaw({ chunkSize: 64 * 1024, finishFlush: zlib.constants.Z_SYNC_FLUSH })
      : compression === 'gzip'
        ? zlib.createGunzip({ chunkSize: 64 * 1024 })
        : compression === null
          ? undefined
          : optionalDecompressor(compression, archiveKey)
  const write = async (chunk: Buffer) => {
    if (extract.destroyed) throw new Error('the archive reader was closed')
    if (!extract.write(chunk)) await drained(extract)
  }
  if (decompressor === undefined) {
    await write(head)
    for (let next = first.done ? first : await chunks.next(); !next.done; next = await chunks.next()) {
      await write(next.value)
    }
  } else {
    const codec = compression === 'zstd' ? 'zstd' : 'gzip'
    // Node's zstd decompressor drops what follows the end of a frame in the same write: hand it
    // one frame's bytes at a time (skippable frames left out), and tell a stream cut inside a frame.
    const frames = compression === 'zstd' ? new ZstdFrameSplitter() : undefined
    let cutInsideFrame = false
    const feeding = (async () => {
      try {
        const feedOne = async (chunk: Uint8Array) => {
          if (decompressor.destroyed) throw new Error('the decompressor was closed')
          if (!decompressor.write(chunk)) await drained(decompressor)
        }
        const feed = frames
          ? async (chunk: Buffer) => {
              for (const piece of frames.push(chunk)) await feedOne(piece)
            }
          : feedOne
        await feed(head)
        for (let next = first.done ? first : await chunks.next(); !next.done; next = await chunks.next()) {
          await feed(next.value)
        }
        cutInsideFrame = frames !== undefined && !frames.finish()
        decompressor.end()
      } catch (error) {
        decompressor.destroy(error as Error)
      }
    })()
    try {
      for await (const chunk of decompressor) await write(chunk as Buffer)
    } catch (error) {
      throw codecError(error, codec)
    }
    await feeding
    if (cutInsideFrame) throw new CodecError('truncated zstd stream (it ends inside a frame)')
  }
  extract.end(undefined as never)
}

/**
 * zstd is looked up when an archive needs it, not imported (see `zstd-codec.ts`): before Node
 * 22.15 a zstd archive is an `UnsupportedCompressionError`.
 */
function optionalDecompressor(compression: 'zstd' | 'bzip2' | 'xz', archiveKey: string): Transform {
  if (compression !== 'zstd') {
    throw new UnsupportedCompressionError(`${compression} compression is not supported (gzip, zstd or none)`, { archiveKey, compression })
  }
  return zstdFor('read', archiveKey).createZstdDecompress({ chunkSize: 64 * 1024 })
}

/** A decompression failure, described (truncated or corrupt, gzip or zstd). */
class CodecError extends Error {
  override name = 'CodecError'
}

/** Says what a decompressor's error means; other errors (of the source, cancellations) pass unchanged. */
function codecError(error: unknown, codec: 'gzip' | 'zstd'): unknown {
  if (error instanceof ZstdFrameError) return new CodecError(error.message, { cause: error })
  const code = String((error as { code?: unknown })?.code ?? '')
  const message = error instanceof Error ? error.message : String(error)
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message))
    return new CodecError(`truncated ${codec} stream`, { cause: error })
  if (code === 'Z_DATA_ERROR' || code.startsWith('ZSTD_error') || /incorrect header check/i.test(message)) {
    return new CodecError(`corrupt ${codec} stream (${message})`, { cause: error })
  }
  return error
}

/** Wraps any error met while reading an archive in a `ShardReadError` (cancellations pass). */
export function toShardReadError(error: unknown, archiveKey: string, memberPath?: string): unknown {
  if (error instanceof ShardReadError) return error
  if (isAbort(error)) return error
  const message = describeTarError(error)
  return new ShardReadError(message, { archiveKey, memberPath, cause: error })
}

function describeTarError(error: unknown): string {
  if (error instanceof S3ExchangeError || error instanceof CodecError) return error.message
  const message = error instanceof Error ? error.message : String(error)
  const code = (error as { code?: string }).code
  if (/Invalid tar header|unknown format/i.test(message)) return `not a tar archive, or corrupt (${message})`
  if (/Unexpected end of data/i.test(message)) return 'truncated archive (unexpected end of data)'
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(message)) return 'truncated gzip stream'
  if (code === 'Z_DATA_ERROR' || /incorrect header check|invalid/i.test(message)) return `corrupt gzip stream (${message})`
  return message
}

/**
 * Wraps the data of a member in an `ObjectBody` (with its internal manifest entry `listed`, when
 * known); an unread rest is skipped when the body is let go.
 */
export function memberBody(member: TarMember, archiveKey: string, key: string, onRelease?: () => void, listed?: FileEntry): ObjectBody {
  return ObjectBody.fromSource({ key, size: member.size, archiveKey, memberPath: member.name, listed }, member.stream, {
    wrapError: (error) => toShardReadError(error, archiveKey, member.name) as Error,
    release: (complete) => {
      if (!complete) member.stream.resume()
      onRelease?.()
    },
  })
}
