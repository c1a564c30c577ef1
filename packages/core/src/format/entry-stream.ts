/**
 * Parsing manifest bytes into entries, line by line as the chunks arrive: `parseManifest` over
 * any byte stream (a file, an HTTP body), and `EntryStream`, the async generator `readManifest`
 * returns. No I/O of its own: the bytes come from whoever opened them.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs'
 * import { parseManifest } from '@s3exchange/core'
 *
 * for await (const entry of parseManifest(createReadStream('manifest.jsonl'), { key: 'manifest.jsonl' })) console.log(entry.kind)
 * ```
 */
import { type ManifestEntry, parseEntry } from './entries.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from './jsonl.js'

/**
 * Parses manifest bytes (a stream of chunks, e.g. a file or an HTTP body) into entries, line by
 * line as they arrive; `key` names the manifest in errors.
 */
export function parseManifest(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: SplitLinesOptions = {}): EntryStream {
  return new EntryStream(async () => ({ source }), options)
}

type Opened = {
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>
  close?: () => void
  /** Lets go of the source's connection until more is read (see `DETACH`). */
  detach?: () => Promise<void>
}

/**
 * The method of a source of entries (an `EntryStream` over S3) that lets go of its connection
 * between entries, e.g. while the manifests a `manifest_ref` of it names are read: what was read
 * ahead stays in memory, the rest is asked for again when iteration goes on (see `ObjectChunks`).
 */
export const DETACH: unique symbol = Symbol.for('s3exchange.detach')

/** A source of entries that can let go of its connection between entries. */
export interface Detachable {
  [DETACH](): Promise<void>
}

/**
 * The entries of a manifest's bytes, as an async generator. Written by hand rather than with
 * `async function*`: an entry already split off its chunk is handed over without the generator
 * machinery, which is most of the cost of reading a manifest once JSON.parse is done.
 */
export class EntryStream implements AsyncGenerator<ManifestEntry, void, undefined>, Detachable {
  readonly #open: () => Promise<Opened>
  readonly #options: SplitLinesOptions
  #chunks: AsyncGenerator<string[], void, undefined> | undefined
  #close: (() => void) | undefined
  #detach: (() => Promise<void>) | undefined
  #lines: string[] = []
  #index = 0
  #lineNumber = 0
  #done = false
  #busy: Promise<unknown> = Promise.resolve()
  #pulling = 0

  /** @internal Made by `readManifest` and `parseManifest`. */
  constructor(open: () => Promise<Opened>, options: SplitLinesOptions = {}) {
    this.#open = open
    this.#options = options
  }

  next(): Promise<IteratorResult<ManifestEntry, void>> {
    // The common case: the next line is already in memory (and no pull is in flight before it).
    if (this.#pulling === 0) {
      try {
        const entry = this.#nextInBatch()
        if (entry !== undefined) return Promise.resolve({ value: entry, done: false })
      } catch (error) {
        this.#finish()
        return Promise.reject(error)
      }
    }
    this.#pulling++
    const result = this.#busy.then(() => this.#pull()).finally(() => this.#pulling--)
    this.#busy = result.catch(() => {})
    return result
  }

  async return(): Promise<IteratorResult<ManifestEntry, void>> {
    this.#finish()
    await this.#chunks?.return(undefined)
    return { value: undefined, done: true }
  }

  async throw(error: unknown): Promise<IteratorResult<ManifestEntry, void>> {
    await this.return()
    throw error
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return()
  }

  /** Lets go of the connection until the next entry is asked for (see `DETACH`); a no-op for sources in memory. */
  async [DETACH](): Promise<void> {
    await this.#busy
    if (!this.#done) await this.#detach?.()
  }

  #nextInBatch(): ManifestEntry | undefined {
    while (this.#index < this.#lines.length) {
      const line = this.#lines[this.#index++] as string
      this.#lineNumber++
      if (!isBlankLine(line)) return parseEntry(line, { key: this.#options.key, lineNumber: this.#lineNumber })
    }
    return undefined
  }

  async #pull(): Promise<IteratorResult<ManifestEntry, void>> {
    try {
      for (;;) {
        const entry = this.#nextInBatch()
        if (entry !== undefined) return { value: entry, done: false }
        if (this.#done) return { value: undefined, done: true }
        if (this.#chunks === undefined) {
          const opened = await this.#open()
          this.#close = opened.close
          this.#detach = opened.detach
          this.#chunks = splitLines(opened.source, this.#options)
        }
        const chunk = await this.#chunks.next()
        if (chunk.done) {
          this.#finish()
          return { value: undefined, done: true }
        }
        this.#lines = chunk.value
        this.#index = 0
      }
    } catch (error) {
      this.#finish()
      throw error
    }
  }

  #finish(): void {
    this.#done = true
    this.#lines = []
    this.#index = 0
    const close = this.#close
    this.#close = undefined
    this.#detach = undefined
    close?.()
  }
}
