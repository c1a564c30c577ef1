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
import type { ObjectBody } from '../body.js'
import { type ManifestEntry, parseEntry } from '../entries.js'
import { ManifestNotFoundError, ObjectNotFoundError } from '../errors.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from '../jsonl.js'
import { getObjectBody, type S3Context } from '../s3.js'

/** Options for {@link readManifest}. */
export interface ReadManifestOptions {
  /** Longest line accepted, in bytes. Default 16 MiB. */
  maxLineBytes?: number
  /** The manifest whose `manifest_ref` led here, named in a `ManifestNotFoundError`. */
  referencedFrom?: string
}

/** Marks a source made by `readManifest` with its key, so `expandRefs` counts it as visited. */
export const MANIFEST_KEY: unique symbol = Symbol.for('s3exchange.manifestKey')

/** The async generator `readManifest` returns: entries, plus the key they come from. */
export type ManifestSource = AsyncGenerator<ManifestEntry, void, undefined> & { readonly [MANIFEST_KEY]: string }

/** Streams and parses the manifest at `key`. */
export function readManifest(ctx: S3Context, key: string, options: ReadManifestOptions = {}): ManifestSource {
  return Object.assign(entriesOf(ctx, key, options), { [MANIFEST_KEY]: key })
}

async function* entriesOf(ctx: S3Context, key: string, options: ReadManifestOptions): AsyncGenerator<ManifestEntry, void, undefined> {
  let body: ObjectBody
  try {
    body = await getObjectBody(ctx, key)
  } catch (error) {
    if (error instanceof ObjectNotFoundError) {
      throw new ManifestNotFoundError(key, { cause: error, referencedFrom: options.referencedFrom })
    }
    throw error
  }
  try {
    yield* parseManifest(body, { key, maxLineBytes: options.maxLineBytes })
  } finally {
    body.destroy()
  }
}

/**
 * Parses manifest bytes (a stream of chunks, e.g. a file or an HTTP body) into entries, line by
 * line as they arrive; `key` names the manifest in errors.
 */
export async function* parseManifest(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: SplitLinesOptions = {},
): AsyncGenerator<ManifestEntry, void, undefined> {
  const key = options.key
  let lineNumber = 0
  for await (const lines of splitLines(source, options)) {
    for (const line of lines) {
      lineNumber++
      if (isBlankLine(line)) continue
      yield parseEntry(line, { key, lineNumber })
    }
  }
}
