/**
 * Parsing manifest bytes into entries, a chunk at a time as the chunks arrive: `parseManifest`
 * over any byte stream (a file, an HTTP body), and `EntryStream`, the async generator
 * `readManifest` returns. The lines of each chunk are parsed in one synchronous loop
 * (`parseLines`) and handed on as one array (see `BatchedStream`): entries come out one at a time,
 * without an await between them. No I/O of its own: the bytes come from whoever opened them.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs'
 * import { parseManifest } from '@s3exchange/core'
 *
 * for await (const entry of parseManifest(createReadStream('manifest.jsonl'), { key: 'manifest.jsonl' })) console.log(entry.kind)
 * ```
 */
import { BatchedStream } from './batches.js'
import { type ManifestEntry, parseEntry } from './entries.js'
import type { InvalidManifestError } from './errors.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from './jsonl.js'

/**
 * Parses manifest bytes (a stream of chunks, e.g. a file or an HTTP body) into entries, chunk by
 * chunk as they arrive; `key` names the manifest in errors.
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
 * How the opened bytes are let go of (`detach`) and closed (once); `closed` once they were (or were
 * to be, before they opened).
 */
type Closer = { close?: (() => void) | undefined; detach?: (() => Promise<void>) | undefined; closed?: boolean }

/** What {@link parseLines} made of some lines: the entries, and the error of the first bad line, if any. */
export interface ParsedLines {
  /** The entries of the lines before the first bad one (all of them when none is bad). */
  entries: ManifestEntry[]
  /** `InvalidManifestError` naming the first bad line; the lines after it are not parsed. */
  error?: InvalidManifestError
}

/**
 * Parses consecutive manifest lines, the first of which is line `linesBefore + 1`: blank lines are
 * skipped (and counted), a bad line stops the parse with its error, after the entries before it.
 */
export function parseLines(lines: readonly string[], linesBefore: number, key?: string): ParsedLines {
  const entries: ManifestEntry[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (isBlankLine(line)) continue
    try {
      // No location object on the way that succeeds: the line is parsed again, located, to throw.
      entries.push(parseEntry(line))
    } catch {
      try {
        entries.push(parseEntry(line, { key, lineNumber: linesBefore + i + 1 }))
      } catch (error) {
        return { entries, error: error as InvalidManifestError }
      }
    }
  }
  return { entries }
}

/**
 * The entries of a manifest's bytes, as an async generator (a `BatchedStream` of the entries of
 * each chunk). The bytes are opened when the first entry is asked for, and closed at the end, on
 * an error, or by `return()`.
 */
export class EntryStream extends BatchedStream<ManifestEntry> implements Detachable {
  readonly #opened: Closer

  /** @internal Made by `readManifest` and `parseManifest`. */
  constructor(open: () => Promise<Opened>, options: SplitLinesOptions = {}) {
    const opened: Closer = {}
    super(() => entryBatches(open, options, opened))
    this.#opened = opened
  }

  override async return(): Promise<IteratorResult<ManifestEntry, void>> {
    // Close the bytes first: a pull waiting for them then ends at once.
    closeOnce(this.#opened)
    return super.return()
  }

  /** Lets go of the connection until the next entries are asked for (see `DETACH`); a no-op for sources in memory. */
  async [DETACH](): Promise<void> {
    await this.settled()
    if (!this.#opened.closed) await this.#opened.detach?.()
  }
}

async function* entryBatches(
  open: () => Promise<Opened>,
  options: SplitLinesOptions,
  opened: Closer,
): AsyncGenerator<ManifestEntry[], void, undefined> {
  const { source, close, detach } = await open()
  opened.close = close
  opened.detach = detach
  try {
    if (opened.closed) return
    let linesBefore = 0
    for await (const lines of splitLines(source, options)) {
      const { entries, error } = parseLines(lines, linesBefore, options.key)
      linesBefore += lines.length
      // The entries before a bad line come out before its error.
      if (entries.length > 0) yield entries
      if (error) throw error
    }
  } finally {
    closeOnce(opened)
  }
}

function closeOnce(opened: Closer): void {
  opened.closed = true
  opened.detach = undefined
  const close = opened.close
  opened.close = undefined
  close?.()
}
