/**
 * Driving a node:zlib compressor (deflate, zstd) that writes into an upload: bytes in with
 * backpressure, compressed chunks out to an async `output`, a failure on either side ending both.
 * `StreamCompressor` takes writes one by one (a body written as members come);
 * `compressInto` compresses one async iterable (a large member streamed as one segment or frame).
 *
 * @example
 * ```ts
 * import { createZstdCompress } from 'node:zlib'
 * import { StreamCompressor } from '@s3exchange/core/internals'
 *
 * const body = new StreamCompressor((chunk) => upload.add(chunk), createZstdCompress())
 * await body.write(Buffer.from('hello'))
 * await body.end() // every compressed byte has been handed to output
 * ```
 */
import type { Transform } from 'node:stream'
import { drained } from './drained.js'

/** Compresses what is written, handing compressed chunks to `output` with backpressure. */
export class StreamCompressor {
  readonly #compressor: Transform
  readonly #pumping: Promise<void>
  #failure: unknown

  constructor(output: (chunk: Buffer) => Promise<void>, compressor: Transform) {
    this.#compressor = compressor
    this.#pumping = (async () => {
      try {
        for await (const chunk of compressor) await output(chunk as Buffer)
      } catch (error) {
        this.#failure ??= error
        compressor.destroy()
      }
    })()
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#failure) throw this.#failure
    if (this.#compressor.destroyed) throw new Error('the compressor was closed')
    if (!this.#compressor.write(bytes)) await drained(this.#compressor)
    if (this.#failure) throw this.#failure
  }

  /** Ends the compressed stream; resolves once every compressed byte has been handed to `output`. */
  async end(): Promise<void> {
    await endAfterWrites(this.#compressor)
    await this.#pumping
    if (this.#failure) throw this.#failure
  }

  destroy(): void {
    this.#failure ??= new Error('aborted')
    this.#compressor.destroy()
  }
}

/**
 * Compresses `parts` through `compressor` into `output`; resolves to the number of compressed
 * bytes. A failure of the source, the compressor or the output destroys the compressor.
 */
export async function compressInto(
  compressor: Transform,
  parts: AsyncIterable<Uint8Array>,
  output: (chunk: Buffer) => Promise<void>,
): Promise<number> {
  let compressed = 0
  const pumping = (async () => {
    for await (const chunk of compressor) {
      compressed += (chunk as Buffer).byteLength
      await output(chunk as Buffer)
    }
  })()
  pumping.catch(() => compressor.destroy())
  try {
    for await (const part of parts) {
      // Destroyed: the output failed, and pumping says how.
      if (compressor.destroyed) break
      if (!compressor.write(part)) await drained(compressor)
    }
    if (!compressor.destroyed) await endAfterWrites(compressor)
    await pumping
  } catch (error) {
    compressor.destroy()
    throw error
  }
  return compressed
}

/**
 * Ends a compressor once every write has been processed. node:zlib compresses the last pending
 * write with the finishing flush and then, ending, flushes once more: for zstd that second flush
 * is a new, empty frame (13 bytes) after the real one. Waiting for the writes first gives one frame.
 */
async function endAfterWrites(compressor: Transform): Promise<void> {
  if (compressor.writableLength > 0) {
    await new Promise<void>((resolve) => compressor.write(new Uint8Array(0), () => resolve()))
  }
  if (!compressor.destroyed) compressor.end()
}
