/**
 * Reading shard archives from S3: the internal manifest, the members with their bodies, one
 * member by path. Entries come out enriched exactly as Python s3exchange enriches them
 * (`archive_key`, `member_path`, and the virtual `key` when the internal manifest lacks one).
 *
 * @example
 * ```ts
 * import { readShardEntries, readShardMembers } from '@s3exchange/core'
 *
 * const shard = { kind: 'shard', archive_key: 'ds/shards/shard-00000.tar.gz' } as const
 * for await (const entry of readShardEntries(ctx, shard)) console.log(entry.key)   // internal manifest only
 * for await (const { entry, body } of readShardMembers(ctx, shard)) {               // one GET, archive order
 *   console.log(entry.member_path, (await body.bytes()).byteLength)
 * }
 * ```
 */
import { Readable } from 'node:stream'
import {
  DEFAULT_INTERNAL_MANIFEST_PATH,
  type FileEntry,
  internalManifestPath,
  type ManifestEntry,
  type ShardEntry,
  validateEntry,
} from '../format/entries.js'
import { InvalidManifestError, LimitExceededError, ObjectChangedError, ObjectNotFoundError, ShardReadError } from '../format/errors.js'
import { isBlankLine, type SplitLinesOptions, splitLines } from '../format/jsonl.js'
import { virtualKey } from '../format/keys.js'
import { effectiveLimits, type ReadLimits } from '../format/limits.js'
import { expectationOf, ObjectBody } from '../s3/body.js'
import { getObjectBody, type S3Context } from '../s3/requests.js'
import { type ArchiveIndex, type ArchiveIndexCache, isLocated, makeIndex, openLocatedMember, readArchiveHead } from './random-access.js'
import { isRegularFile, readTarMembers, type SniffedCompression, type TarMember, toShardReadError } from './tar-reader.js'

/** An entry with the bytes of the object it names. */
export interface EntryWithBody<E extends ManifestEntry = ManifestEntry> {
  entry: E
  body: ObjectBody
}

/** Options for reading shards. */
export interface ShardReadOptions extends Pick<ReadLimits, 'maxLineBytes' | 'maxInternalManifestBytes' | 'maxMemberBytes'> {
  /**
   * Check each member against its internal manifest entry as it is read: its length against
   * `size_bytes`, its SHA-256 against `sha256`, when the entry has them; a mismatch fails the read
   * with `IntegrityError`. Default false.
   */
  verify?: boolean
}

/** Throws `LimitExceededError` when a member is larger than allowed. */
function checkMemberSize(member: TarMember, archiveKey: string, limit: number, option: string): void {
  if (member.size > limit) {
    throw new LimitExceededError(`the member ${member.name} declares ${member.size} bytes`, {
      key: archiveKey,
      limit: option,
      value: limit,
    })
  }
}

/** Opens the archive of a shard; a missing archive is a `ShardReadError` whose cause is `ObjectNotFoundError`. */
async function openArchive(ctx: S3Context, archiveKey: string): Promise<ObjectBody> {
  try {
    return await getObjectBody(ctx, archiveKey)
  } catch (error) {
    if (error instanceof ObjectNotFoundError) {
      throw new ShardReadError('the archive does not exist', { archiveKey, cause: error })
    }
    throw error
  }
}

/**
 * Parses an internal manifest as Python does: every entry must be a `file`; an entry without
 * `key` gets the virtual key of its `member_path`.
 */
export async function parseInternalManifest(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  archiveKey: string,
  path: string,
  options: SplitLinesOptions = {},
): Promise<FileEntry[]> {
  const location = virtualKey(archiveKey, path)
  const entries: FileEntry[] = []
  let lineNumber = 0
  try {
    for await (const lines of splitLines(source, { ...options, key: location })) {
      for (const line of lines) {
        lineNumber++
        if (isBlankLine(line)) continue
        entries.push(parseInternalEntry(line, archiveKey, { key: location, lineNumber }))
      }
    }
  } catch (error) {
    if (error instanceof InvalidManifestError) throw error
    throw toShardReadError(error, archiveKey, path)
  }
  return entries
}

function parseInternalEntry(line: string, archiveKey: string, location: { key: string; lineNumber: number }): FileEntry {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    throw new InvalidManifestError(`invalid JSON: ${(error as Error).message}`, { ...location, cause: error })
  }
  const raw = value as Record<string, unknown> | null
  if (
    raw &&
    typeof raw === 'object' &&
    raw.kind === 'file' &&
    raw.key === undefined &&
    typeof raw.member_path === 'string' &&
    raw.member_path
  ) {
    raw.key = virtualKey(archiveKey, raw.member_path)
  }
  const entry = validateEntry(value, location)
  if (entry.kind !== 'file') {
    throw new ShardReadError(`internal manifest line ${location.lineNumber} is a '${entry.kind}' entry; only 'file' entries are allowed`, {
      archiveKey,
    })
  }
  return entry
}

/** An internal manifest entry as Python's `list_manifest_files` yields it. */
export function listedMemberEntry(entry: FileEntry, archiveKey: string): FileEntry {
  const enriched: FileEntry = { ...entry, archive_key: archiveKey, member_path: entry.member_path ?? '' }
  if (enriched.key === undefined) enriched.key = virtualKey(archiveKey, enriched.member_path ?? '')
  return enriched
}

/** The entry of a member met while streaming, as Python's `iter_objects` yields it. */
export function streamedMemberEntry(member: { name: string; size: number }, listed: FileEntry | undefined, archiveKey: string): FileEntry {
  const base: FileEntry = listed ?? ({ kind: 'file', member_path: member.name, size_bytes: member.size } as FileEntry)
  const enriched: FileEntry = { ...base, archive_key: archiveKey, member_path: base.member_path ?? member.name }
  if (enriched.key === undefined) enriched.key = virtualKey(archiveKey, member.name)
  return enriched
}

/** Wraps the data of a member in an `ObjectBody`; an unread rest is skipped when the body is let go. */
export function memberBody(member: TarMember, archiveKey: string, key: string, onRelease?: () => void): ObjectBody {
  return ObjectBody.fromSource({ key, size: member.size, archiveKey, memberPath: member.name }, member.stream, {
    wrapError: (error) => toShardReadError(error, archiveKey, member.name) as Error,
    release: (complete) => {
      if (!complete) member.stream.resume()
      onRelease?.()
    },
  })
}

/** Reads the internal manifest of a shard: streams the archive until it is found, then stops. */
export async function readInternalManifest(ctx: S3Context, shard: ShardEntry, options: ShardReadOptions = {}): Promise<FileEntry[]> {
  const archiveKey = shard.archive_key
  const path = internalManifestPath(shard)
  const limits = effectiveLimits(ctx.limits, options)
  const members = readTarMembers(await openArchive(ctx, archiveKey), { archiveKey, signal: ctx.signal })
  try {
    for await (const member of members) {
      if (isRegularFile(member) && member.name === path) {
        checkMemberSize(member, archiveKey, limits.maxInternalManifestBytes, 'maxInternalManifestBytes')
        return await parseInternalManifest(member.stream, archiveKey, path, limits)
      }
    }
  } finally {
    await members.return(undefined)
  }
  throw missingManifest(archiveKey, path)
}

function missingManifest(archiveKey: string, path: string): ShardReadError {
  return new ShardReadError(`internal manifest '${path}' not found in the archive`, { archiveKey })
}

/**
 * The entries of a shard's internal manifest, in its order, enriched as Python's
 * `list_manifest_files` does. Reads only as far into the archive as the internal manifest.
 */
export async function* readShardEntries(ctx: S3Context, shard: ShardEntry, options: ShardReadOptions = {}): AsyncGenerator<FileEntry> {
  for (const entry of await readInternalManifest(ctx, shard, options)) yield listedMemberEntry(entry, shard.archive_key)
}

/** A regular member met while scanning an archive, with what its internal manifest says of it. */
export interface ScannedMember {
  /** Path inside the archive. */
  name: string
  /** Size from the tar header. */
  size: number
  /** Offset of the data in the uncompressed tar stream. */
  dataOffset: number
  /** The internal manifest's entry for this member (as written, not enriched), if it lists it. */
  listed: FileEntry | undefined
  /** The member's data; see {@link readShardMembers} for its lifetime. */
  body: ObjectBody
}

/** Options for {@link scanArchive}. */
export interface ScanArchiveOptions extends ShardReadOptions {
  /**
   * Path of the internal manifest, which is read and not yielded. `null`: no internal manifest,
   * every regular member is yielded. Default `__manifest__.jsonl`.
   */
  internalManifestPath?: string | null
  /** Throw `ShardReadError` when the internal manifest is missing. Default true. */
  requireManifest?: boolean
  /** Yield only the members with these paths (the others are skipped without being read). */
  only?: ReadonlySet<string>
  /** The whole archive, already in memory (read instead of S3). */
  whole?: Uint8Array
  /**
   * Told the archive's index when its internal manifest is its first member, before any member
   * is yielded; returning false stops the scan there (nothing is yielded), e.g. to read a few
   * members with ranged GETs instead.
   */
  onIndex?: (index: ArchiveIndex) => boolean | undefined
}

/**
 * Streams the regular members of an archive, in archive order, each with its internal manifest
 * entry. Directories, links and other non-regular members are skipped, never followed. If the
 * internal manifest is not the first regular member, the archive is read twice: once to find it,
 * once to stream the members. A body not read to the end when the next member is asked for is
 * skipped; reading it later fails.
 */
export async function* scanArchive(ctx: S3Context, archiveKey: string, options: ScanArchiveOptions = {}): AsyncGenerator<ScannedMember> {
  const path = options.internalManifestPath === undefined ? DEFAULT_INTERNAL_MANIFEST_PATH : options.internalManifestPath
  const requireManifest = path !== null && (options.requireManifest ?? true)
  const limits = effectiveLimits(ctx.limits, options)
  const wanted = (member: TarMember) => isRegularFile(member) && member.name !== path && (!options.only || options.only.has(member.name))
  // With `only`, stop reading once every wanted member has been seen.
  const missing = options.only ? new Set(options.only) : undefined
  const allSeen = (member: TarMember) => {
    missing?.delete(member.name)
    return missing !== undefined && missing.size === 0
  }
  let byPath: Map<string, FileEntry> | undefined = path === null ? new Map() : undefined
  let manifestFirst = true
  const open = async (): Promise<Readable> =>
    options.whole
      ? Readable.from([Buffer.from(options.whole.buffer, options.whole.byteOffset, options.whole.byteLength)])
      : openArchive(ctx, archiveKey)
  const archive = await open()
  let compression: SniffedCompression = null
  const firstPass = readTarMembers(archive, { archiveKey, signal: ctx.signal, onCompression: (found) => (compression = found) })
  try {
    for await (const member of firstPass) {
      if (byPath === undefined && isRegularFile(member)) {
        if (member.name === path) {
          checkMemberSize(member, archiveKey, limits.maxInternalManifestBytes, 'maxInternalManifestBytes')
          const entries = await parseInternalManifest(member.stream, archiveKey, path, limits)
          byPath = indexByPath(entries)
          if (manifestFirst && options.onIndex) {
            const info = archive as Partial<ObjectBody>
            if (options.onIndex(makeIndex(archiveKey, info.etag, compression, info.size, entries)) === false) return
          }
          if (manifestFirst) continue
          break
        }
        manifestFirst = false
      }
      if (manifestFirst && byPath !== undefined && wanted(member)) {
        yield* yieldMember(member, byPath, archiveKey, limits.maxMemberBytes, options.verify)
        if (allSeen(member)) return
      }
    }
  } finally {
    await firstPass.return(undefined)
  }
  if (byPath === undefined) {
    if (requireManifest) throw missingManifest(archiveKey, path as string)
    byPath = new Map()
  }
  if (manifestFirst) return

  const secondPass = readTarMembers(await open(), { archiveKey, signal: ctx.signal })
  try {
    for await (const member of secondPass) {
      if (wanted(member)) {
        yield* yieldMember(member, byPath, archiveKey, limits.maxMemberBytes, options.verify)
        if (allSeen(member)) return
      }
    }
  } finally {
    await secondPass.return(undefined)
  }
}

async function* yieldMember(
  member: TarMember,
  byPath: Map<string, FileEntry>,
  archiveKey: string,
  maxMemberBytes: number,
  verify: boolean | undefined,
): AsyncGenerator<ScannedMember> {
  checkMemberSize(member, archiveKey, maxMemberBytes, 'maxMemberBytes')
  const listed = byPath.get(member.name)
  const body = memberBody(member, archiveKey, virtualKey(archiveKey, member.name))
  if (verify && listed) body.expect(expectationOf(listed))
  try {
    yield { name: member.name, size: member.size, dataOffset: member.dataOffset, listed, body }
  } finally {
    body.abandon(
      `the body of ${body.key} was not read before the iteration moved on to the next item; read it inside the loop (e.g. await body.bytes())`,
    )
  }
}

/**
 * Every regular member of a shard but its internal manifest, in archive order, with its entry as
 * Python's `iter_objects` gives it (from the internal manifest, or a minimal one for members it
 * does not list) and its body, out of one streaming GET (see {@link scanArchive}).
 */
export async function* readShardMembers(
  ctx: S3Context,
  shard: ShardEntry,
  options: ShardReadOptions = {},
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const archiveKey = shard.archive_key
  for await (const member of scanArchive(ctx, archiveKey, { ...options, internalManifestPath: internalManifestPath(shard) })) {
    yield { entry: streamedMemberEntry(member, member.listed, archiveKey), body: member.body }
  }
}

function indexByPath(entries: FileEntry[]): Map<string, FileEntry> {
  const byPath = new Map<string, FileEntry>()
  for (const entry of entries) {
    const path = entry.member_path ?? entry.key
    if (path) byPath.set(path, entry)
  }
  return byPath
}

/** Options for {@link openArchiveMember}. */
export interface OpenMemberOptions {
  /** Where archive indexes are kept between calls (a `LruCache`); without one each call reads the head again. */
  indexCache?: ArchiveIndexCache
  /** Path of the internal manifest. Default `__manifest__.jsonl`. */
  internalManifestPath?: string
}

/**
 * Opens one member of an archive. With an index that locates it (shards this library writes),
 * that is one ranged GET (after one small GET of the archive's head, unless the index is cached);
 * otherwise the archive is streamed up to the member (from memory when the head read held the
 * whole archive). Resolves to undefined when the archive does not exist; throws
 * `ObjectNotFoundError` (with the virtual key) when the archive has no such member,
 * `ShardReadError` when it is not a regular file or the archive is unreadable.
 */
export async function openArchiveMember(
  ctx: S3Context,
  archiveKey: string,
  memberPath: string,
  options: OpenMemberOptions = {},
): Promise<ObjectBody | undefined> {
  const cache = options.indexCache
  let index = cache?.get(archiveKey)
  let whole: Uint8Array | undefined
  if (index === undefined) {
    let head: Awaited<ReturnType<typeof readArchiveHead>>
    try {
      head = await readArchiveHead(ctx, archiveKey, options)
    } catch (error) {
      throw toShardReadError(error, archiveKey, memberPath)
    }
    if (head === undefined) return undefined
    whole = head.whole
    if (head.index) {
      index = head.index
      cache?.set(archiveKey, index)
    }
  }
  const entry = index?.byPath.get(memberPath)
  if (index && entry && isLocated(index, entry)) {
    try {
      const body = await openLocatedMember(ctx, index, entry)
      if (body) return body
    } catch (error) {
      if (!(error instanceof ObjectChangedError)) throw error
    }
    // The archive changed, or its index did not hold: forget it and read the archive itself.
    cache?.delete(archiveKey)
  }
  return scanForMember(ctx, archiveKey, memberPath, whole)
}

/** Streams an archive (from memory when given) up to one member. */
async function scanForMember(
  ctx: S3Context,
  archiveKey: string,
  memberPath: string,
  whole: Uint8Array | undefined,
): Promise<ObjectBody | undefined> {
  let archive: Readable
  if (whole !== undefined) {
    archive = Readable.from([Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength)])
  } else {
    try {
      archive = await getObjectBody(ctx, archiveKey)
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined
      throw error
    }
  }
  const members = readTarMembers(archive, { archiveKey, signal: ctx.signal })
  try {
    for (let next = await members.next(); !next.done; next = await members.next()) {
      const member = next.value
      if (member.name !== memberPath) continue
      if (!isRegularFile(member)) {
        throw new ShardReadError(`the member is a ${member.type}, not a regular file`, { archiveKey, memberPath })
      }
      return memberBody(member, archiveKey, virtualKey(archiveKey, memberPath), () => {
        void members.return(undefined)
      })
    }
  } catch (error) {
    await members.return(undefined)
    throw error
  }
  throw new ObjectNotFoundError(virtualKey(archiveKey, memberPath), { detail: 'the archive has no such member' })
}
