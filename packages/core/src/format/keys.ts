/**
 * Key helpers, with Python s3exchange's semantics: normalizing keys, resolving `{placeholder}`
 * templates, inferring ids from keys, virtual keys of archive members, archive formats.
 *
 * @example
 * ```ts
 * import { inferId, resolveTemplate, splitVirtualKey } from '@s3exchange/core'
 *
 * resolveTemplate('{service}/jobs/{job_id}/', { service: 'asr', job_id: 7 }) // 'asr/jobs/7'
 * inferId('a/b/clip-001.wav')                                               // 'clip-001'
 * splitVirtualKey('s/shard-0.tar#x/0001.wav') // { archiveKey: 's/shard-0.tar', memberPath: 'x/0001.wav' }
 * ```
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { ConfigurationError, MissingPlaceholderError } from './errors.js'

/** Collapses repeated slashes and removes leading and trailing ones. */
export function normalizeKey(key: string): string {
  return key.replace(/\/+/g, '/').replace(/^\//, '').replace(/\/$/, '')
}

/** Values for template placeholders; each is turned into a string. */
export type TemplateVars = Record<string, string | number | boolean | bigint>

const PLACEHOLDER = /\{\{|\}\}|\{(\w+)\}/g

/**
 * Replaces each `{name}` in `template` with `String(vars[name])` (`{{` and `}}` are literal
 * braces) and normalizes the result. Throws `MissingPlaceholderError` for the first name
 * without a value.
 */
export function resolveTemplate(template: string, vars: TemplateVars = {}): string {
  const resolved = template.replace(PLACEHOLDER, (match, name: string | undefined) => {
    if (name === undefined) return match[0] as string
    if (!Object.hasOwn(vars, name)) throw new MissingPlaceholderError(name, template)
    return String(vars[name])
  })
  return normalizeKey(resolved)
}

/** The id Python infers from a key: its last path segment without the last extension. */
export function inferId(key: string): string {
  const basename = key.slice(key.lastIndexOf('/') + 1)
  const dot = basename.lastIndexOf('.')
  return dot === -1 ? basename : basename.slice(0, dot)
}

/** The parts of a virtual key `archive_key#member_path`. */
export interface VirtualKey {
  archiveKey: string
  memberPath: string
}

/**
 * Splits a key at its first `#`, or returns undefined when it cannot be a virtual key: no `#`, or
 * nothing before it or after it (`#name`, `a.tar#` are ordinary keys). Whether the part before
 * the `#` is really an archive is only known by looking: keys may contain `#`.
 */
export function splitVirtualKey(key: string): VirtualKey | undefined {
  const hash = key.indexOf('#')
  if (hash <= 0 || hash === key.length - 1) return undefined
  return { archiveKey: key.slice(0, hash), memberPath: key.slice(hash + 1) }
}

/** The virtual key of an archive member. */
export function virtualKey(archiveKey: string, memberPath: string): string {
  return `${archiveKey}#${memberPath}`
}

/** Archive format and compression, as Python infers them from an archive key's extension. */
export interface ArchiveFormat {
  format: 'tar'
  compression: 'gzip' | 'zstd' | 'bzip2' | 'xz' | null
}

/** The compression of a shard archive this library writes: gzip, zstd, or `null` for a plain tar. */
export type ArchiveCompression = 'gzip' | 'zstd' | null

/**
 * The compression of shards whose name the library chooses (`shardInto`, the `ManifestWriter`,
 * `s3x pack`) and of archive keys without a known extension: gzip, as Python's `put_shard_archive`
 * (which every Python reader reads).
 */
export const DEFAULT_SHARD_COMPRESSION: ArchiveCompression = 'gzip'

/** Digits of the index in the names of shards the library names (`shard-<run id>-00000.tar.gz`). */
export const SHARD_INDEX_DIGITS = 5

const EXTENSIONS: [suffix: string, compression: ArchiveFormat['compression']][] = [
  ['.tar', null],
  ['.tar.gz', 'gzip'],
  ['.tgz', 'gzip'],
  ['.tar.zst', 'zstd'],
  ['.tzst', 'zstd'],
  ['.tar.bz2', 'bzip2'],
  ['.tar.xz', 'xz'],
]

/** The compression an archive key's extension names, or undefined when it has none of a tar archive's. */
export function extensionCompression(archiveKey: string): ArchiveFormat['compression'] | undefined {
  return EXTENSIONS.find(([suffix]) => archiveKey.endsWith(suffix))?.[1]
}

/** `.tar.gz` / `.tgz` → gzip, `.tar.zst` / `.tzst` → zstd, `.tar.bz2` → bzip2, `.tar.xz` → xz, anything else a plain tar. */
export function inferArchiveFormat(archiveKey: string): ArchiveFormat {
  return { format: 'tar', compression: extensionCompression(archiveKey) ?? null }
}

/** True when the key's extension is one of a tar archive's. */
export function isArchiveKey(key: string): boolean {
  return extensionCompression(key) !== undefined
}

/** The extension of a shard archive with this compression: `.tar`, `.tar.gz` or `.tar.zst`. */
export function archiveExtension(compression: ArchiveCompression): string {
  return compression === 'gzip' ? '.tar.gz' : compression === 'zstd' ? '.tar.zst' : '.tar'
}

/**
 * The compression of a shard written to `archiveKey`: its extension decides (`.tar` plain,
 * `.tar.gz` / `.tgz` gzip, `.tar.zst` / `.tzst` zstd), and a `compression` option that says
 * otherwise is a `ConfigurationError` naming the key and the option. A key without a known
 * extension gets `compression`, by default {@link DEFAULT_SHARD_COMPRESSION} (gzip). An extension
 * this library cannot write (`.tar.bz2`, `.tar.xz`) is a `ConfigurationError` too.
 */
export function archiveCompressionFor(archiveKey: string, compression?: ArchiveCompression): ArchiveCompression {
  if (compression !== undefined && compression !== null && compression !== 'gzip' && compression !== 'zstd') {
    throw new ConfigurationError(
      `compression must be 'gzip', 'zstd' or null (a plain tar), not ${JSON.stringify(compression)} (archive ${archiveKey})`,
      {
        option: 'compression',
        key: archiveKey,
      },
    )
  }
  const named = extensionCompression(archiveKey)
  if (named === undefined) return compression === undefined ? DEFAULT_SHARD_COMPRESSION : compression
  if (named === 'bzip2' || named === 'xz') {
    throw new ConfigurationError(`cannot write ${named} archives (${archiveKey}): name it .tar, .tar.gz or .tar.zst`, {
      option: 'compression',
      key: archiveKey,
    })
  }
  if (compression !== undefined && compression !== named) {
    throw new ConfigurationError(
      `compression ${JSON.stringify(compression)} contradicts the archive key ${archiveKey}, whose extension means ${named === null ? 'a plain tar (null)' : JSON.stringify(named)}: drop the option or rename the key`,
      { option: 'compression', key: archiveKey },
    )
  }
  return named
}

/** True when the key's extension is a manifest's (`.jsonl`). */
export function isManifestKey(key: string): boolean {
  return key.endsWith('.jsonl')
}

/** True when `key` is inside the fence `fence` (a folder: `a/b` holds `a/b` and `a/b/…`; an empty fence holds every key). */
export function isWithinFence(key: string, fence: string): boolean {
  const base = fence.replace(/\/+$/, '')
  return base === '' || key === base || key.startsWith(`${base}/`)
}

/** Checks a shard member path: relative, no `..`, no empty segment at the start, no NUL. Returns the problem, if any. */
export function memberPathProblem(path: string): string | undefined {
  if (typeof path !== 'string' || path === '') return 'the member path is empty'
  if (path.includes('\u0000')) return 'the member path contains a NUL character'
  if (path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path)) return 'the member path is absolute'
  if (path.split(/[\\/]/).includes('..')) return "the member path contains '..'"
  if (path.endsWith('/')) return 'the member path ends with / (a directory)'
  return undefined
}

/** `YYYYMMDD-HHMMSS`, in UTC: the time stamp in part and archive names. */
export function utcStamp(date: Date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

/** A run id for default archive names: UTC time and 6 random hex digits. */
export function runId(date: Date = new Date()): string {
  return `${utcStamp(date)}-${randomBytes(3).toString('hex')}`
}

/**
 * The name of a shard the library names itself, the same in `shardInto`, the `ManifestWriter` and
 * `s3x pack`: `shard-<run id>-<index from 0, 5 digits>.tar[.gz|.zst]`, e.g.
 * `shard-20261204-101500-3afdea-00000.tar.gz`. The run id makes a second run never overwrite the
 * archives of a first; the padded index keeps a run's archives in order when listed.
 */
export function shardArchiveName(run: string, index: number, compression: ArchiveCompression): string {
  return `shard-${run}-${String(index).padStart(SHARD_INDEX_DIGITS, '0')}${archiveExtension(compression)}`
}

/**
 * A new part key for a root: `<directory of root>/manifests/part-<YYYYMMDD>-<HHMMSS>-<8 hex>.jsonl`
 * (UTC time, 8 hex digits of a random UUID), as Python's `Manifest.generate_part_key`.
 */
export function partKeyFor(rootKey: string, date: Date = new Date()): string {
  const slash = rootKey.lastIndexOf('/')
  const dir = slash === -1 ? '' : rootKey.slice(0, slash)
  return `${dir ? `${dir}/` : ''}manifests/part-${utcStamp(date)}-${randomUUID().slice(0, 8)}.jsonl`
}
