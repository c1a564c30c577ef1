/**
 * The checks `s3x verify` runs, one object at a time, each returning the problems it found (an
 * empty list when all is well) rather than throwing:
 *
 * - `checkLooseObject`: the object exists (a HEAD); its size and ETag are those of the entry's
 *   `size_bytes` and `etag` when given; when the entry carries `sha256` (hex or base64), the
 *   object is read and hashed.
 * - `checkArchive`: the archive exists, its size and ETag are those of each shard entry naming it
 *   (`size_bytes`, `meta.etag`), and it reads to the end (every member streamed, gzip or not).
 *   Its internal manifest must agree with it: every listed member present, with its `size_bytes`
 *   (and `offset`, `sha256` when given); a member that is not listed, or a listed one missing, is
 *   a problem, as is a shard's `count` that differs from the listed members. Member entries of an
 *   expanded manifest (`archive_key` + `member_path`) must name members that exist, with their size.
 *
 * @example
 * ```ts
 * import { checkArchive, checkLooseObject } from '@s3exchange/cli'
 *
 * const problems = await checkLooseObject(store.context(), { kind: 'file', key: 'a.wav', size_bytes: 3120 })
 * const { problems: more } = await checkArchive(store.context(), { archiveKey: 'shards/s-0.tar', shards: [shardEntry], members: [] })
 * ```
 */
import { createHash, type Hash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  DEFAULT_INTERNAL_MANIFEST_PATH,
  type FileEntry,
  getObjectBody,
  headObject,
  internalManifestPath,
  type ObjectBody,
  ObjectNotFoundError,
  type S3Context,
  type ShardEntry,
  splitVirtualKey,
  virtualKey,
} from 's3exchange'
import { answeredEtag, isRegularFile, parseInternalManifest, readTarMembers, unquoteEtag } from 's3exchange/internals'
import { oneLine } from './output.js'

/** One thing wrong, and the key (or virtual key) it is about. */
export interface Problem {
  key: string
  problem: string
}

/** The checks of one loose object; see the module comment. */
export async function checkLooseObject(ctx: S3Context, entry: FileEntry): Promise<{ bytes: number; problems: Problem[] }> {
  const problems: Problem[] = []
  const report = (problem: string) => problems.push({ key: entry.key, problem })
  let head: Awaited<ReturnType<typeof headObject>>
  try {
    head = await headObject(ctx, entry.key)
  } catch (error) {
    report(error instanceof ObjectNotFoundError ? 'the object does not exist' : messageOf(error))
    return { bytes: 0, problems }
  }
  const size = head.ContentLength
  if (typeof entry.size_bytes === 'number' && size !== undefined && size !== entry.size_bytes) {
    report(`the object has ${size} bytes, the manifest says ${entry.size_bytes}`)
  }
  // An empty ETag, recorded or answered, says nothing (earlier versions recorded Ceph RGW 16’s empty ones).
  const etag = answeredEtag(head.ETag)
  if (typeof entry.etag === 'string' && answeredEtag(entry.etag) !== undefined && etag !== undefined && etag !== unquoteEtag(entry.etag)) {
    report(`the object's ETag is ${etag}, the manifest says ${unquoteEtag(entry.etag)}`)
  }
  if (typeof entry.sha256 === 'string') {
    try {
      const body = await getObjectBody(ctx, entry.key)
      const hash = createHash('sha256')
      for await (const chunk of body) hash.update(chunk as Uint8Array)
      const mismatch = sha256Mismatch(hash, entry.sha256)
      if (mismatch) report(mismatch)
    } catch (error) {
      report(messageOf(error))
    }
  }
  return { bytes: size ?? 0, problems }
}

/** What `checkArchive` is told about one archive. */
export interface ArchiveExpectations {
  archiveKey: string
  /** The shard entries that name it (usually one). */
  shards: ShardEntry[]
  /** Member file entries (`archive_key` + `member_path`) that name it. */
  members: FileEntry[]
}

/** What `checkArchive` found. */
export interface ArchiveCheck {
  /** Bytes of the archive read. */
  bytes: number
  /** Regular members read (the internal manifest not counted). */
  members: number
  problems: Problem[]
}

interface SeenMember {
  size: number
  dataOffset: number
  sha256: string | undefined
}

/** The checks of one archive; see the module comment. */
export async function checkArchive(ctx: S3Context, expected: ArchiveExpectations): Promise<ArchiveCheck> {
  const { archiveKey, shards, members } = expected
  const problems: Problem[] = []
  const report = (problem: string, key = archiveKey) => problems.push({ key, problem })
  let body: ObjectBody
  try {
    body = await getObjectBody(ctx, archiveKey)
  } catch (error) {
    report(error instanceof ObjectNotFoundError ? 'the archive does not exist' : messageOf(error))
    return { bytes: 0, members: 0, problems }
  }
  for (const shard of shards) {
    if (typeof shard.size_bytes === 'number' && body.size !== undefined && body.size !== shard.size_bytes) {
      report(`the archive has ${body.size} bytes, the manifest says ${shard.size_bytes}`)
    }
    const etag = shard.meta?.etag
    if (
      typeof etag === 'string' &&
      answeredEtag(etag) !== undefined &&
      body.etag !== undefined &&
      unquoteEtag(body.etag) !== unquoteEtag(etag)
    ) {
      report(`the archive's ETag is ${unquoteEtag(body.etag)}, the manifest says ${unquoteEtag(etag)}`)
    }
  }

  // Which member paths must be hashed: those whose entry (outside, or in the internal manifest) has a sha256.
  const wantedSha = new Map<string, string>()
  for (const member of members) if (typeof member.sha256 === 'string') wantedSha.set(memberPathOf(member), member.sha256)
  const archiveSha = shards.map((shard) => shard.sha256).find((value): value is string => typeof value === 'string')
  const archiveHash = archiveSha === undefined ? undefined : createHash('sha256')

  let bytes = 0
  const counted = Readable.from(
    (async function* () {
      try {
        for await (const chunk of body) {
          bytes += (chunk as Uint8Array).byteLength
          archiveHash?.update(chunk as Uint8Array)
          yield chunk as Uint8Array
        }
      } finally {
        body.destroy()
      }
    })(),
    { objectMode: false },
  )

  const path = shards[0] ? internalManifestPath(shards[0]) : DEFAULT_INTERNAL_MANIFEST_PATH
  const seen = new Map<string, SeenMember>()
  let listed: FileEntry[] | undefined
  let complete = false
  try {
    for await (const member of readTarMembers(counted, { archiveKey })) {
      if (!isRegularFile(member)) continue
      if (member.name === path && listed === undefined) {
        listed = await parseInternalManifest(member.stream, archiveKey, path)
        for (const entry of listed) if (typeof entry.sha256 === 'string') wantedSha.set(memberPathOf(entry), entry.sha256)
        continue
      }
      const hash = wantedSha.has(member.name) ? createHash('sha256') : undefined
      let size = 0
      for await (const chunk of member.stream) {
        size += (chunk as Uint8Array).byteLength
        hash?.update(chunk as Uint8Array)
      }
      if (seen.has(member.name)) report('the member appears twice in the archive', virtualKey(archiveKey, member.name))
      seen.set(member.name, { size, dataOffset: member.dataOffset, sha256: hash?.digest('hex') })
    }
    complete = true
  } catch (error) {
    report(`the archive cannot be read to the end: ${messageOf(error)}`)
  }
  if (complete && body.size !== undefined && bytes !== body.size) report(`read ${bytes} bytes of an archive of ${body.size}`)
  if (complete && archiveHash && archiveSha !== undefined) {
    const mismatch = sha256Mismatch(archiveHash, archiveSha)
    if (mismatch) report(mismatch)
  }

  if (shards.length > 0) {
    if (listed === undefined) {
      if (complete) report(`the internal manifest '${path}' is not in the archive`)
    } else {
      compareListed(archiveKey, listed, seen, complete, report)
      for (const shard of shards) {
        if (typeof shard.count === 'number' && shard.count !== listed.length) {
          report(`the manifest says count ${shard.count}, the internal manifest lists ${listed.length} members`)
        }
      }
    }
  }
  for (const member of members) {
    const name = memberPathOf(member)
    const found = seen.get(name)
    if (!found) {
      if (complete) report('the member is not in the archive', member.key)
      continue
    }
    if (typeof member.size_bytes === 'number' && member.size_bytes !== found.size) {
      report(`the member has ${found.size} bytes, the manifest says ${member.size_bytes}`, member.key)
    }
    checkMemberSha(member, found, (problem) => report(problem, member.key))
  }
  return { bytes, members: seen.size, problems }
}

/** The internal manifest against the members read. */
function compareListed(
  archiveKey: string,
  listed: FileEntry[],
  seen: Map<string, SeenMember>,
  complete: boolean,
  report: (problem: string, key?: string) => void,
): void {
  const listedPaths = new Set<string>()
  for (const entry of listed) {
    const name = memberPathOf(entry)
    const key = virtualKey(archiveKey, name)
    if (listedPaths.has(name)) report('listed twice in the internal manifest', key)
    listedPaths.add(name)
    const found = seen.get(name)
    if (!found) {
      if (complete) report('listed in the internal manifest but not in the archive', key)
      continue
    }
    if (typeof entry.size_bytes === 'number' && entry.size_bytes !== found.size) {
      report(`the member has ${found.size} bytes, the internal manifest says ${entry.size_bytes}`, key)
    }
    if (typeof entry.offset === 'number' && entry.offset !== found.dataOffset) {
      report(`the member's data is at offset ${found.dataOffset}, the internal manifest says ${entry.offset}`, key)
    }
    checkMemberSha(entry, found, (problem) => report(problem, key))
  }
  for (const name of seen.keys()) {
    if (!listedPaths.has(name)) report('in the archive but not listed in its internal manifest', virtualKey(archiveKey, name))
  }
}

function checkMemberSha(entry: FileEntry, found: SeenMember, report: (problem: string) => void): void {
  if (typeof entry.sha256 !== 'string' || found.sha256 === undefined) return
  if (!sameSha(found.sha256, entry.sha256)) report(`sha256 is ${found.sha256}, the manifest says ${entry.sha256}`)
}

/** The path inside its archive of a member entry (its `member_path`, or what follows `#` in its key). */
function memberPathOf(entry: FileEntry): string {
  if (typeof entry.member_path === 'string' && entry.member_path !== '') return entry.member_path
  return splitVirtualKey(entry.key)?.memberPath ?? entry.key
}

function sha256Mismatch(hash: Hash, expected: string): string | undefined {
  const hex = hash.digest('hex')
  return sameSha(hex, expected) ? undefined : `sha256 is ${hex}, the manifest says ${expected}`
}

/** A hex digest against a sha256 given in hex or base64. */
function sameSha(hex: string, expected: string): boolean {
  if (expected.toLowerCase() === hex) return true
  return Buffer.from(hex, 'hex').toString('base64') === expected.replace(/=*$/, '=')
}

function messageOf(error: unknown): string {
  return oneLine(error instanceof Error ? error.message || error.name : String(error))
}
