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

/**
 * Data to upload: bytes (a `Uint8Array` or `Buffer`, an `ArrayBuffer`, a `DataView` or any other
 * typed array, as its bytes), a path to a local file (a string, as in Python s3exchange), a Node
 * `Readable` or any (async) iterable of byte chunks. Anything else (null, a number, a plain object)
 * is an `InvalidSourceError`, before anything is written.
 */
export type DataSource = Uint8Array | ArrayBuffer | ArrayBufferView | string | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/**
 * The bytes of `data` when it is bytes in memory (a view on the same memory, no copy), undefined
 * for a path or a stream; `InvalidSourceError` for anything that is no data source.
 */
export function bytesOf(data: unknown, key: string): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (typeof data === 'string') return undefined
  const iterable = data as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown } | null
  if (
    iterable !== null &&
    typeof iterable === 'object' &&
    (typeof iterable[Symbol.asyncIterator] === 'function' || typeof iterable[Symbol.iterator] === 'function')
  ) {
    return undefined
  }
  throw new InvalidSourceError(
    `unsupported data: ${describeData(data)}; give bytes (Uint8Array, Buffer, ArrayBuffer, DataView), a file path, a Readable or an iterable of byte chunks`,
    { key },
  )
}

function describeData(data: unknown): string {
  if (data === null) return 'null'
  if (typeof data === 'object') return `an object (${(data as object).constructor?.name ?? 'no prototype'})`
  return `a ${typeof data} (${String(data)})`
}

/** A chunk of a stream source as bytes: strings (from a Readable with an encoding) as UTF-8; anything else is `InvalidSourceError`. */
function chunkBytes(chunk: unknown, key: string): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk)
  if (chunk instanceof Uint8Array) return chunk
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk)
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw new InvalidSourceError(`the stream gave ${describeData(chunk)} where a chunk of bytes was expected`, { key })
}

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
  if (hint !== undefined && !(Number.isSafeInteger(hint) && hint >= 0)) {
    throw new InvalidSourceError(`size_bytes must be a non-negative integer, got ${String(hint)}`, { key: options.key })
  }
  const bytes = bytesOf(data, options.key)
  if (bytes !== undefined) {
    if (hint !== undefined && hint !== bytes.byteLength) {
      throw new InvalidSourceError(`size_bytes is ${hint} but the data has ${bytes.byteLength} bytes`, { key: options.key })
    }
    return inMemory(bytes)
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
        return checkedStream(createReadStream(data as string, { highWaterMark: 1024 * 1024 }), size, options.key)
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
        return hint === undefined ? byteChunks(data as Chunks, options.key) : checkedStream(data as Chunks, hint, options.key)
      },
    }
  }
  const max = options.maxBufferedBytes ?? DEFAULT_MAX_UNSIZED_BYTES
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const raw of data as Chunks) {
    // String chunks (a Readable with an encoding) are taken as UTF-8, as when streaming.
    const chunk = chunkBytes(raw, options.key)
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

type Chunks = AsyncIterable<unknown> | Iterable<unknown>

function inMemory(bytes: Uint8Array): PreparedSource {
  return { size: bytes.byteLength, bytes, open: () => byteChunks([bytes], '') }
}

/** The chunks of `data` as bytes (string chunks, from a Readable with an encoding, as UTF-8). */
async function* byteChunks(data: Chunks, key: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of data) yield chunkBytes(chunk, key)
}

/** Passes a stream through, failing when it yields more or fewer bytes than `size`. */
async function* checkedStream(data: Chunks, size: number, key: string): AsyncGenerator<Uint8Array> {
  let seen = 0
  for await (const raw of data) {
    const chunk = chunkBytes(raw, key)
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
