/**
 * What can be uploaded, and how big it is: bytes, a file path (as in Python), a Node `Readable`
 * (an `ObjectBody` included) or any async iterable of bytes. The size is known up front for bytes
 * and files; for streams it is the size given, or the stream is read into memory (up to a limit)
 * to learn it when a size is needed and none was given.
 *
 * @example
 * ```ts
 * import { prepareSource } from '@s3exchange/core'
 *
 * const source = await prepareSource('/data/clip.wav', { key: 'ds/clip.wav' })
 * console.log(source.size)                       // from stat
 * for await (const chunk of source.open()) …     // streams the file
 * ```
 */
import type { Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { InvalidSourceError } from '../format/errors.js'

/** Data to upload. A string is a path to a local file, as in Python s3exchange. */
export type DataSource = Uint8Array | string | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/** A source with its size known (or not) and a way to read it. */
export interface PreparedSource {
  /** Size in bytes, when known. */
  size: number | undefined
  /** The bytes, when the source is in memory. */
  bytes: Uint8Array | undefined
  /** Reads the data (once). */
  open(): AsyncIterable<Uint8Array>
}

/** Options for {@link prepareSource}. */
export interface PrepareSourceOptions {
  /** Where the data goes, for error messages. */
  key: string
  /** The size the caller says the data has; checked against bytes and files. */
  sizeHint?: number | null | undefined
  /** Read a stream of unknown size into memory to learn its size. Default false. */
  requireSize?: boolean
  /** Largest stream read into memory for that. Default 64 MiB. */
  maxBufferedBytes?: number
}

/** Default largest stream of unknown size read into memory to learn its size. */
export const DEFAULT_MAX_UNSIZED_BYTES = 64 * 1024 * 1024

/** Works out a source's size and how to read it. */
export async function prepareSource(data: DataSource, options: PrepareSourceOptions): Promise<PreparedSource> {
  const hint = options.sizeHint ?? undefined
  if (data instanceof Uint8Array) {
    if (hint !== undefined && hint !== data.byteLength) {
      throw new InvalidSourceError(`size_bytes is ${hint} but the data has ${data.byteLength} bytes`, { key: options.key })
    }
    return inMemory(data)
  }
  if (typeof data === 'string') {
    let size: number
    try {
      const info = await stat(data)
      if (!info.isFile()) throw new Error(`${data} is not a regular file`)
      size = info.size
    } catch (error) {
      throw new InvalidSourceError(`cannot read the file ${data}: ${(error as Error).message}`, { key: options.key, cause: error })
    }
    if (hint !== undefined && hint !== size) {
      throw new InvalidSourceError(`size_bytes is ${hint} but the file ${data} has ${size} bytes`, { key: options.key })
    }
    let opened = false
    return {
      size,
      bytes: undefined,
      open: () => {
        if (opened) throw new InvalidSourceError('the file source was already read', { key: options.key })
        opened = true
        return checkedStream(createReadStream(data, { highWaterMark: 1024 * 1024 }), size, options.key)
      },
    }
  }
  if (hint !== undefined || !options.requireSize) {
    let opened = false
    return {
      size: hint,
      bytes: undefined,
      open: () => {
        if (opened) throw new InvalidSourceError('a stream source can be read only once', { key: options.key })
        opened = true
        return hint === undefined ? byteChunks(data) : checkedStream(data, hint, options.key)
      },
    }
  }
  const max = options.maxBufferedBytes ?? DEFAULT_MAX_UNSIZED_BYTES
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const raw of data) {
    // String chunks (a Readable with an encoding) are taken as UTF-8, as when streaming.
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw
    total += chunk.byteLength
    if (total > max) {
      throw new InvalidSourceError(
        `a stream without size_bytes is read into memory to learn its size, and this one exceeds ${max} bytes; give its size_bytes`,
        {
          key: options.key,
        },
      )
    }
    chunks.push(chunk)
  }
  return inMemory(Buffer.concat(chunks))
}

function inMemory(bytes: Uint8Array): PreparedSource {
  return { size: bytes.byteLength, bytes, open: () => byteChunks([bytes]) }
}

/** The chunks of `data` as bytes (string chunks, from a Readable with an encoding, as UTF-8). */
async function* byteChunks(data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of data) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk
}

/** Passes a stream through, failing when it yields more or fewer bytes than `size`. */
async function* checkedStream(
  data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
  key: string,
): AsyncGenerator<Uint8Array> {
  let seen = 0
  for await (const raw of data) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw
    seen += chunk.byteLength
    if (seen > size) throw new InvalidSourceError(`the data is longer than its size_bytes (${size})`, { key })
    yield chunk
  }
  if (seen !== size) throw new InvalidSourceError(`the data has ${seen} bytes but size_bytes is ${size}`, { key })
}

/** Passes chunks through, feeding each to `hash` on the way (the digest of what was uploaded). */
export async function* hashing(hash: Hash, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    hash.update(chunk)
    yield chunk
  }
}
