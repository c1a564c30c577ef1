/**
 * Reading shard archives from S3 as streams: the internal manifest, and the members with their
 * bodies out of one GET (random access to one member is `random-access.ts`). Entries come out
 * enriched exactly as Python s3exchange enriches them (`archive_key`, `member_path`, and the
 * virtual `key` when the internal manifest lacks one).
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
 *
 * (Just over 300 lines: both passes of a scan share the pinning to the first answer's ETag.)
 */
import { Readable } from 'node:stream'
import { DEFAULT_INTERNAL_MANIFEST_PATH, type FileEntry, internalManifestPath, type ShardEntry } from '../format/entries.js'
import { LimitExceededError, ObjectChangedError, ObjectNotFoundError, ShardReadError } from '../format/errors.js'
import { virtualKey } from '../format/keys.js'
import { effectiveLimits, type ReadLimits } from '../format/limits.js'
import { checkOptions } from '../format/options.js'
import { type EntryWithBody, expectationOf, type ObjectBody, type ObjectInfo, type VerifyOptions } from '../s3/body.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { getObjectBody } from '../s3/object-source.js'
import { type ArchiveIndex, makeIndex } from './archive-index.js'
import { indexByPath, listedMemberEntry, parseInternalManifest, streamedMemberEntry } from './internal-manifest.js'
import { isRegularFile, memberBody, readTarMembers, type SniffedCompression, type TarMember } from './tar-reader.js'

/** Options for reading shards. */
export interface ShardReadOptions extends VerifyOptions, Pick<ReadLimits, 'maxLineBytes' | 'maxInternalManifestBytes' | 'maxMemberBytes'> {}

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

/**
 * Opens the archive of a shard (the version with ETag `ifMatch`, when given); a missing archive is
 * a `ShardReadError` whose cause is `ObjectNotFoundError`, a replaced one (`ifMatch`) one whose
 * cause is `ObjectChangedError`.
 */
async function openArchive(ctx: S3Context, archiveKey: string, ifMatch?: string): Promise<ObjectBody> {
  try {
    return await getObjectBody(ctx, archiveKey, ifMatch === undefined ? {} : { ifMatch })
  } catch (error) {
    if (error instanceof ObjectNotFoundError) {
      throw new ShardReadError('the archive does not exist', { archiveKey, cause: error })
    }
    if (error instanceof ObjectChangedError) {
      throw new ShardReadError('the archive was replaced while it was being read', { archiveKey, cause: error })
    }
    throw error
  }
}

/** Reads the internal manifest of a shard: streams the archive until it is found, then stops. */
export async function readInternalManifest(ctx: S3Context, shard: ShardEntry, options: ShardReadOptions = {}): Promise<FileEntry[]> {
  checkContext('readInternalManifest', ctx)
  checkOptions('readInternalManifest', options)
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
export function readShardEntries(ctx: S3Context, shard: ShardEntry, options: ShardReadOptions = {}): AsyncGenerator<FileEntry> {
  checkContext('readShardEntries', ctx)
  checkOptions('readShardEntries', options)
  return (async function* () {
    for (const entry of await readInternalManifest(ctx, shard, options)) yield listedMemberEntry(entry, shard.archive_key)
  })()
}

/** The entries of a shard's internal manifest as written (not enriched), read when first asked for. */
export function readInternalEntries(ctx: S3Context, shard: ShardEntry, options: ShardReadOptions = {}): AsyncGenerator<FileEntry> {
  checkContext('readInternalEntries', ctx)
  checkOptions('readInternalEntries', options)
  return (async function* () {
    yield* await readInternalManifest(ctx, shard, options)
  })()
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
  /**
   * Read only the version of the archive with this ETag (`If-Match`): a replaced archive is a
   * `ShardReadError` whose cause is `ObjectChangedError`. Default: whatever version is there; a
   * second pass (internal manifest not first) always insists on the version of the first.
   */
  ifMatch?: string
  /** Told what is known of the archive (its ETag, its size) once it is opened, before any member is yielded. */
  onOpen?: (archive: ObjectInfo) => void
  /** Skip (read past, without yielding) the first this many members that would be yielded: resumes a scan. */
  skip?: number
}

/**
 * Streams the regular members of an archive, in archive order, each with its internal manifest
 * entry. Directories, links and other non-regular members are skipped, never followed. If the
 * internal manifest is not the first regular member, the archive is read twice: once to find it,
 * once to stream the members. A body not read to the end when the next member is asked for is
 * skipped; reading it later fails.
 */
export function scanArchive(ctx: S3Context, archiveKey: string, options: ScanArchiveOptions = {}): AsyncGenerator<ScannedMember> {
  checkContext('scanArchive', ctx)
  checkOptions('scanArchive', options)
  return scan(ctx, archiveKey, options)
}

async function* scan(ctx: S3Context, archiveKey: string, options: ScanArchiveOptions): AsyncGenerator<ScannedMember> {
  const path = options.internalManifestPath === undefined ? DEFAULT_INTERNAL_MANIFEST_PATH : options.internalManifestPath
  const requireManifest = path !== null && (options.requireManifest ?? true)
  const limits = effectiveLimits(ctx.limits, options)
  const wanted = (member: TarMember) => isRegularFile(member) && member.name !== path && (!options.only || options.only.has(member.name))
  /** A member asked for by path (`only`) must be a regular file, wherever it is met. */
  const refuseLinks = (member: TarMember) => {
    if (options.only?.has(member.name) && !isRegularFile(member)) {
      throw new ShardReadError(`the member is a ${member.type}, not a regular file`, { archiveKey, memberPath: member.name })
    }
  }
  // With `only`, stop reading once every wanted member has been seen.
  const missing = options.only ? new Set(options.only) : undefined
  const allSeen = (member: TarMember) => {
    missing?.delete(member.name)
    return missing !== undefined && missing.size === 0
  }
  let byPath: Map<string, FileEntry> | undefined = path === null ? new Map() : undefined
  let manifestFirst = true
  let toSkip = options.skip ?? 0
  const open = async (ifMatch: string | undefined): Promise<Readable> =>
    options.whole
      ? Readable.from([Buffer.from(options.whole.buffer, options.whole.byteOffset, options.whole.byteLength)])
      : openArchive(ctx, archiveKey, ifMatch)
  const archive = await open(options.ifMatch)
  const info = archive as Partial<ObjectBody>
  options.onOpen?.({ key: archiveKey, etag: info.etag, size: info.size })
  /** The members to yield: all wanted ones but the first `skip`. */
  const due = (member: TarMember): boolean => {
    if (!wanted(member)) return false
    if (toSkip === 0) return true
    toSkip--
    return false
  }
  let compression: SniffedCompression = null
  const firstPass = readTarMembers(archive, { archiveKey, signal: ctx.signal, onCompression: (found) => (compression = found) })
  try {
    for await (const member of firstPass) {
      refuseLinks(member)
      if (byPath === undefined && isRegularFile(member)) {
        if (member.name === path) {
          checkMemberSize(member, archiveKey, limits.maxInternalManifestBytes, 'maxInternalManifestBytes')
          const entries = await parseInternalManifest(member.stream, archiveKey, path, limits)
          byPath = indexByPath(entries)
          if (manifestFirst && options.onIndex) {
            if (options.onIndex(makeIndex(archiveKey, info.etag, compression, info.size, entries)) === false) return
          }
          if (manifestFirst) continue
          break
        }
        manifestFirst = false
      }
      if (manifestFirst && byPath !== undefined && due(member)) {
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

  // The same version as the first pass, or the members would not be the ones its manifest lists.
  const secondPass = readTarMembers(await open(info.etag ?? options.ifMatch), { archiveKey, signal: ctx.signal })
  try {
    for await (const member of secondPass) {
      refuseLinks(member)
      if (due(member)) {
        yield* yieldMember(member, byPath, archiveKey, limits.maxMemberBytes, options.verify)
        if (allSeen(member)) return
      }
    }
  } finally {
    await secondPass.return(undefined)
  }
}

/** One regular member as `scanArchive` yields it: size checked, body checked against its entry with `verify`, abandoned once the iteration moves on. */
export async function* yieldMember(
  member: TarMember,
  byPath: Map<string, FileEntry>,
  archiveKey: string,
  maxMemberBytes: number,
  verify: boolean | undefined,
): AsyncGenerator<ScannedMember> {
  checkMemberSize(member, archiveKey, maxMemberBytes, 'maxMemberBytes')
  const listed = byPath.get(member.name)
  const body = memberBody(member, archiveKey, virtualKey(archiveKey, member.name), undefined, listed)
  if (verify && listed) body.expect(expectationOf(listed))
  try {
    yield { name: member.name, size: member.size, dataOffset: member.dataOffset, listed, body }
  } finally {
    body.abandon()
  }
}

/**
 * Every regular member of a shard but its internal manifest, in archive order, with its entry as
 * Python's `iter_objects` gives it (from the internal manifest, or a minimal one for members it
 * does not list) and its body, out of one streaming GET (see {@link scanArchive}).
 */
export function readShardMembers(
  ctx: S3Context,
  shard: ShardEntry,
  options: ShardReadOptions = {},
): AsyncGenerator<EntryWithBody<FileEntry>> {
  return shardMembers(ctx, shard, options)
}

/** The members of a shard as `readShardMembers` gives them, with the scan's own options (to resume a scan, pin a version). */
export function shardMembers(
  ctx: S3Context,
  shard: ShardEntry,
  options: Omit<ScanArchiveOptions, 'internalManifestPath'>,
): AsyncGenerator<EntryWithBody<FileEntry>> {
  const archiveKey = shard.archive_key
  const members = scanArchive(ctx, archiveKey, { ...options, internalManifestPath: internalManifestPath(shard) })
  return (async function* () {
    for await (const member of members) yield { entry: streamedMemberEntry(member, member.listed, archiveKey), body: member.body }
  })()
}

/**
 * Every regular member of an archive, its internal manifest included, with a minimal entry
 * (`kind`, virtual `key`, `member_path`, `size_bytes`), in archive order, out of one streaming GET
 * (Python's `Shard.iter_objects`).
 */
export function readArchiveMembers(ctx: S3Context, archiveKey: string): AsyncGenerator<EntryWithBody<FileEntry>> {
  const members = scanArchive(ctx, archiveKey, { internalManifestPath: null })
  return (async function* () {
    for await (const member of members) {
      const entry: FileEntry = { kind: 'file', key: virtualKey(archiveKey, member.name), member_path: member.name, size_bytes: member.size }
      yield { entry, body: member.body }
    }
  })()
}
