/**
 * `readManifest(ctx, key)`: a source of the entries of one manifest object, parsed line by line
 * as the object streams in; the whole manifest is never held in memory. Refs are not followed
 * (compose with `expandRefs`). A missing manifest throws `ManifestNotFoundError`; a bad line
 * throws `InvalidManifestError` with the key and line number. Blank lines are skipped, `\r\n`
 * is accepted, unknown fields are kept.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { readManifest } from '@s3exchange/core'
 *
 * const ctx = { client: new S3Client({}), bucket: 'my-bucket' }
 * for await (const entry of readManifest(ctx, 'training/123/samples/manifest.jsonl')) {
 *   console.log(entry.kind, entry.kind === 'shard' ? entry.archive_key : entry.key)
 * }
 * ```
 */

import { type ManifestEntry, parseEntry } from '../format/entries.js'
import { ManifestNotFoundError, ObjectNotFoundError } from '../format/errors.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from '../format/jsonl.js'
import type { ObjectBody } from '../s3/body.js'
import { getObjectBody, type S3Context } from '../s3/requests.js'

/** Options for {@link readManifest}. */
export interface ReadManifestOptions {
  /** Longest line accepted, in bytes. Default: the context's `limits.maxLineBytes`, else 16 MiB. */
  maxLineBytes?: number
  /** The manifest whose `manifest_ref` led here, named in a `ManifestNotFoundError`. */
  referencedFrom?: string
}

/** Marks a source made by `readManifest` with its key, so `expandRefs` counts it as visited. */
export const MANIFEST_KEY: unique symbol = Symbol.for('s3exchange.manifestKey')

/** What `readManifest` returns: an async generator of entries, plus the key they come from. */
export type ManifestSource = EntryStream & { readonly [MANIFEST_KEY]: string }

/** Streams and parses the manifest at `key`. */
export function readManifest(ctx: S3Context, key: string, options: ReadManifestOptions = {}): ManifestSource {
  const open = async () => {
    let body: ObjectBody
    try {
      body = await getObjectBody(ctx, key)
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        throw new ManifestNotFoundError(key, { cause: error, referencedFrom: options.referencedFrom })
      }
      throw error
    }
    return { source: body, close: () => body.destroy() }
  }
  return Object.assign(new EntryStream(open, { key, maxLineBytes: options.maxLineBytes ?? ctx.limits?.maxLineBytes }), {
    [MANIFEST_KEY]: key,
  })
}

/**
 * Parses manifest bytes (a stream of chunks, e.g. a file or an HTTP body) into entries, line by
 * line as they arrive; `key` names the manifest in errors.
 */
export function parseManifest(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: SplitLinesOptions = {}): EntryStream {
  return new EntryStream(async () => ({ source }), options)
}

type Opened = { source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>; close?: () => void }

/**
 * The entries of a manifest's bytes, as an async generator. Written by hand rather than with
 * `async function*`: an entry already split off its chunk is handed over without the generator
 * machinery, which is most of the cost of reading a manifest once JSON.parse is done.
 */
export class EntryStream implements AsyncGenerator<ManifestEntry, void, undefined> {
  readonly #open: () => Promise<Opened>
  readonly #options: SplitLinesOptions
  #chunks: AsyncGenerator<string[], void, undefined> | undefined
  #close: (() => void) | undefined
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
    close?.()
  }
}
