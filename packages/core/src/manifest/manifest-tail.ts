/**
 * Following a manifest object as it grows: `tailManifest` yields the bytes of an opened GET, then
 * polls the object for what is appended to it, and yields only the new bytes, for as long as the
 * caller iterates (or until its signal fires). A poll is cheap: a GetObject with `If-None-Match`
 * on the last ETag seen, which the server answers 304 while nothing changed; when it changed, a
 * ranged read from the start of the manifest (up to 1 MiB read so far) or from the first byte of
 * the last line read (past it), so that what was read can be checked to be still there (against
 * the CRC-32 of the manifest up to the last line) before the bytes after it are taken as appended. A manifest rewritten rather than appended to (a compaction, an
 * overwrite) is a `CursorMismatchError` (`reason: 'rewritten'`); a deleted one, `ManifestNotFoundError`.
 * A server that ignores `If-None-Match` on GET costs one ranged read of the last line per poll.
 *
 * @example
 * ```ts
 * import { tailManifest } from '@s3exchange/core/internals'
 *
 * const state = { etag: body.etag, delivered: 0 }
 * for await (const chunk of tailManifest(ctx, 'ds/manifest.jsonl', body, state, { pollIntervalMs: 1000 })) process.stdout.write(chunk)
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { crc32 } from 'node:zlib'
import { CursorMismatchError, ManifestNotFoundError, ObjectNotFoundError, S3RequestError } from '../format/errors.js'
import type { ObjectBody } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { collectSource, openObjectSource } from '../s3/object-source.js'

/** Up to this size, a changed manifest is read again whole and checked whole; past it, from its last line. */
const FULL_CHECK_BYTES = 1024 * 1024

/** What the tail knows of the object, updated as it goes (and by its reader, for `last`). */
export interface TailState {
  /** The ETag of the version the latest bytes came from. */
  etag: string | undefined
  /** Bytes of the object yielded so far, from `base` on. */
  delivered: number
  /** The last complete line its reader took: where it is, and the CRC-32 of the object up to its start and its end. */
  last?: { start: number; startCrc: number; end: number; crc: number } | undefined
}

/** Options for {@link tailManifest}. */
export interface TailOptions {
  /** Pause between polls, in milliseconds. */
  pollIntervalMs: number
  /** Offset in the object of the opened body's first byte. Default 0. */
  base?: number
}

/** Yields `body`'s bytes, then what is appended to the object; see the module comment. */
export async function* tailManifest(
  ctx: S3Context,
  key: string,
  body: ObjectBody,
  state: TailState,
  options: TailOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const base = options.base ?? 0
  for await (const chunk of body) {
    state.delivered += (chunk as Uint8Array).byteLength
    yield chunk as Uint8Array
  }
  for (;;) {
    await sleep(options.pollIntervalMs, undefined, { signal: ctx.signal })
    const read = base + state.delivered
    const last = state.last
    // A small manifest is read again from its start, so that all of it is checked; a large one from its last line.
    const from = last === undefined ? read : read <= FULL_CHECK_BYTES ? 0 : last.start
    let bytes: Uint8Array
    let etag: string | undefined
    try {
      const { info, source } = await openObjectSource(ctx, key, { start: from, ifNoneMatch: state.etag })
      etag = info.etag
      bytes = await collectSource(ctx, key, source)
    } catch (error) {
      if (error instanceof S3RequestError && error.statusCode === 304) continue
      // Nothing at or past `from`: unchanged in length when no line was read yet, else shorter.
      if (error instanceof S3RequestError && error.statusCode === 416 && last === undefined) continue
      if (error instanceof S3RequestError && error.statusCode === 416) throw rewritten(key, 'it is now shorter than what was read')
      if (error instanceof ObjectNotFoundError) throw new ManifestNotFoundError(key, { cause: error })
      throw error
    }
    if (last) {
      const length = last.end - from
      if (bytes.byteLength < length || crc32(bytes.subarray(0, length), from === 0 ? 0 : last.startCrc) !== last.crc) {
        throw rewritten(key, `bytes ${from}-${last.end - 1} changed`)
      }
    }
    const skip = read - from
    if (bytes.byteLength < skip) throw rewritten(key, 'it is now shorter than what was read')
    state.etag = etag
    const fresh = bytes.subarray(skip)
    if (fresh.byteLength === 0) continue
    state.delivered += fresh.byteLength
    yield fresh
  }
}

function rewritten(key: string, detail: string): CursorMismatchError {
  return new CursorMismatchError(key, 'rewritten', `the manifest was rewritten, not appended to, while it was followed (${detail})`)
}
