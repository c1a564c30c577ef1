/**
 * `fetchKeys(ctx, opts)`: the objects of a list of keys and virtual keys (`archive#member`), as
 * Python's `iter_objects_from_keys` gives them. It reads the whole list first, then yields loose
 * keys first, in order, fetched `concurrency` at a time (see `fetchBodies`); then each archive is
 * read once for all the members asked of it, in archive order. An archive's index (read from the
 * same stream) decides how: when every member asked for is located and they are few (at most 8,
 * or a quarter of the archive's bytes at most), they are read with one ranged GET each instead of
 * streaming the archive (`planRangedReads`). Entries are built as Python builds them. A key that
 * names nothing throws `ObjectNotFoundError` (for members, after the rest of their archive),
 * unless `onMissing: 'skip'`; a key whose part before the `#` is no archive is read as an ordinary
 * key (keys may contain `#`).
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { fetchKeys, take } from '@s3exchange/core'
 *
 * for await (const { entry, body } of pipe(['ds/a.wav', 'ds/shards/s-0.tar#b.wav'], fetchKeys(ctx), take(10))) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 */
import type { ArchiveIndex, ArchiveIndexCache } from '../archive/archive-index.js'
import { isLocated } from '../archive/archive-index.js'
import { scanArchive } from '../archive/scan-archive.js'
import type { FileEntry } from '../format/entries.js'
import { ObjectNotFoundError, S3RequestError, ShardReadError } from '../format/errors.js'
import { inferId as defaultInferId, splitVirtualKey } from '../format/keys.js'
import { LruCache } from '../format/lru-cache.js'
import { checkOptions } from '../format/options.js'
import { type EntryWithBody, expectationOf } from '../s3/body.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { type FetchBodiesOptions, fetchBodies } from './fetch-bodies.js'

/** Options for {@link fetchKeys}. */
export interface FetchKeysOptions extends Pick<FetchBodiesOptions, 'concurrency' | 'onMissing' | 'indexCache' | 'verify'> {
  /** Derives a loose object's `id` from its key. Default: the basename without its last extension. */ inferId?: (key: string) => string
}

/** Most members of one archive read with ranged GETs rather than by streaming the archive. */
const FEW_MEMBERS = 8

/** Fetches the objects of keys and virtual keys; see the module comment. */
export function fetchKeys(ctx: S3Context, options: FetchKeysOptions = {}) {
  checkContext('fetchKeys', ctx)
  checkOptions('fetchKeys', options)
  const inferId = options.inferId ?? defaultInferId
  return async function* fetchKeysStage(
    keys: AsyncIterable<string> | Iterable<string>,
  ): AsyncGenerator<EntryWithBody<FileEntry>, void, undefined> {
    const { loose, byArchive } = await groupKeys(keys)
    yield* fetchLoose(ctx, loose, options, inferId)
    // Without a cache given, one for this call: the ranged reads below need the index just read.
    const indexes: ArchiveIndexCache = options.indexCache ?? new LruCache<ArchiveIndex>(1)
    for (const [archiveKey, members] of byArchive) {
      const cached = indexes.get(archiveKey)
      let ranged = cached ? planRangedReads(cached, members) : undefined
      if (ranged === undefined) {
        // Stream the archive once for all its members; but if its index (read first) locates
        // them and they are few, stop there and read them with ranged GETs instead.
        const found = new Set<string>()
        const onIndex = (index: ArchiveIndex) => {
          indexes.set(archiveKey, index)
          ranged = planRangedReads(index, members)
          return ranged === undefined
        }
        try {
          for await (const member of scanArchive(ctx, archiveKey, {
            only: new Set(members.keys()),
            requireManifest: false,
            onIndex,
            verify: options.verify,
          })) {
            const key = members.get(member.name) as string
            found.add(member.name)
            const entry: FileEntry = member.listed
              ? { ...member.listed, archive_key: archiveKey, member_path: member.name, key }
              : { kind: 'file', key, archive_key: archiveKey, member_path: member.name, id: inferId(member.name) }
            yield { entry, body: member.body }
          }
        } catch (error) {
          const archiveMissing = error instanceof ShardReadError && error.cause instanceof ObjectNotFoundError && found.size === 0
          if (archiveMissing) {
            // No such archive: the keys are ordinary keys that contain '#'.
            yield* fetchLoose(ctx, [...members.values()], options, inferId)
            continue
          }
          if (!(error instanceof ShardReadError) || found.size > 0 || error.cause instanceof S3RequestError) throw error
          // An object that is no archive (or an unreadable one): the keys may be ordinary keys with '#'.
          yield* ordinaryOr(ctx, [...members.values()], options, inferId, () => error)
          continue
        }
        if (ranged === undefined) {
          // Keys the archive has no member for may still be ordinary keys that contain '#'.
          const missing = [...members].filter(([memberPath]) => !found.has(memberPath)).map(([, key]) => key)
          yield* ordinaryOr(ctx, missing, options, inferId, (key) =>
            options.onMissing === 'skip' ? undefined : new ObjectNotFoundError(key, { detail: 'the archive has no such member' }),
          )
          continue
        }
      }
      // One ranged GET per member, fetched ahead like loose objects. Each entry is the one of the
      // archive's index its member was read with: when the cached index turned out stale (the
      // archive was rewritten), the fresh one, so that entries always match their bytes.
      const fetch = fetchBodies(ctx, { concurrency: options.concurrency, onMissing: options.onMissing, indexCache: indexes })
      for await (const { entry, body } of fetch(ranged as FileEntry[])) {
        const fresh: FileEntry = body.listed
          ? {
              ...body.listed,
              archive_key: archiveKey,
              member_path: body.listed.member_path ?? (entry as FileEntry).member_path,
              key: (entry as FileEntry).key,
            }
          : (entry as FileEntry)
        if (options.verify) body.expect(expectationOf(fresh))
        yield { entry: fresh, body }
      }
    }
  }
}

/**
 * The keys read as ordinary keys; a key that names no object either fails with `notFound(key)`
 * (or is skipped when that gives undefined), after the others were yielded.
 */
async function* ordinaryOr(
  ctx: S3Context,
  keys: string[],
  options: FetchKeysOptions,
  inferId: (key: string) => string,
  notFound: (key: string) => unknown,
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const got = new Set<string>()
  for await (const item of fetchLoose(ctx, keys, { ...options, onMissing: 'skip' }, inferId)) {
    got.add(item.entry.key)
    yield item
  }
  for (const key of keys) {
    if (got.has(key)) continue
    const error = notFound(key)
    if (error !== undefined) throw error
  }
}

/** Loose keys in order, and the members asked of each archive (member path → the key asked for), archives in order of first mention. */
export async function groupKeys(
  keys: AsyncIterable<string> | Iterable<string>,
): Promise<{ loose: string[]; byArchive: Map<string, Map<string, string>> }> {
  const loose: string[] = []
  const byArchive = new Map<string, Map<string, string>>()
  for await (const key of keys) {
    const virtual = splitVirtualKey(key)
    if (virtual === undefined) loose.push(key)
    else {
      const members = byArchive.get(virtual.archiveKey) ?? new Map<string, string>()
      byArchive.set(virtual.archiveKey, members)
      members.set(virtual.memberPath, key)
    }
  }
  return { loose, byArchive }
}

/**
 * The entries to read with ranged GETs, when that beats streaming the archive: every member asked
 * for (member path → the key asked for) is located by the index, and they are few (at most 8) or
 * a small part of the archive (a quarter of its bytes at most). In archive order, as when the
 * archive is streamed. Undefined: stream the archive.
 */
export function planRangedReads(index: ArchiveIndex, members: Map<string, string>): FileEntry[] | undefined {
  const entries: FileEntry[] = []
  let bytes = 0
  for (const [memberPath, key] of members) {
    const listed = index.byPath.get(memberPath)
    if (!listed || !isLocated(index, listed)) return undefined
    bytes += listed.size_bytes ?? 0
    entries.push({ ...listed, archive_key: index.archiveKey, member_path: memberPath, key })
  }
  const few = entries.length <= FEW_MEMBERS || (index.size !== undefined && bytes * 4 <= index.size)
  if (!few) return undefined
  const position = new Map(index.entries.map((entry, i) => [entry, i]))
  const at = (entry: FileEntry) => position.get(index.byPath.get(entry.member_path as string) as FileEntry) as number
  return entries.sort((a, b) => at(a) - at(b))
}

/** Loose keys fetched `concurrency` at a time, with the entries Python builds for them. */
async function* fetchLoose(
  ctx: S3Context,
  keys: string[],
  options: FetchKeysOptions,
  inferId: (key: string) => string,
): AsyncGenerator<EntryWithBody<FileEntry>> {
  if (keys.length === 0) return
  const entries = keys.map((key): FileEntry => ({ kind: 'file', key }))
  const fetch = fetchBodies(ctx, { concurrency: options.concurrency, onMissing: options.onMissing })
  for await (const { entry, body } of fetch(entries)) {
    yield {
      entry: {
        kind: 'file',
        key: entry.key,
        id: inferId(entry.key),
        size_bytes: body.size ?? null,
        etag: body.etag ?? null,
        content_type: body.contentType ?? null,
      },
      body,
    }
  }
}
