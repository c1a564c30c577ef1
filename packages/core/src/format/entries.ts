/**
 * The wire format: manifest entries, one compact JSON object per line, as Python s3exchange 0.1.x
 * writes them. Field names are snake_case; unknown fields are kept; `serializeEntry` gives the
 * same bytes as Python's `json.dumps(entry, separators=(",", ":"))` for entries made of strings,
 * integers, booleans and nulls (non-ASCII escaped as `\uXXXX`).
 *
 * @example
 * ```ts
 * import { parseEntry, serializeEntry } from '@s3exchange/core'
 *
 * const entry = parseEntry('{"kind":"file","key":"a/ü.wav","id":"ü"}', { key: 'm.jsonl', lineNumber: 1 })
 * serializeEntry(entry) // '{"kind":"file","key":"a/\\u00fc.wav","id":"\\u00fc"}'
 * ```
 */
import { InvalidEntryError, InvalidManifestError } from './errors.js'

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/**
 * Free-form metadata attached to an entry: any JSON-serializable object (typed loosely so that
 * your own interfaces fit without an index signature).
 */
export type Meta = { [key: string]: unknown }

/**
 * A single object: a loose S3 object, or (with `archive_key` and `member_path`) a member of a
 * shard archive, whose `key` is then the virtual key `archive_key#member_path`.
 */
export interface FileEntry {
  kind: 'file'
  /** The S3 key, or the virtual key of an archive member. */
  key: string
  id?: string | null
  meta?: Meta | null
  content_type?: string | null
  size_bytes?: number | null
  etag?: string | null
  /** For archive members: the archive's key. */
  archive_key?: string
  /** For archive members: the member's path inside the archive. */
  member_path?: string
  /**
   * Extension, in the internal manifest of a shard this library wrote: byte offset of the
   * member's data in the uncompressed tar stream.
   */
  offset?: number
  /**
   * Extension, in the internal manifest of a seekable gzip shard: offset of the compressed segment
   * that holds this member (header, data, padding), from the start of the object.
   */
  gz_offset?: number
  /** Extension, with `gz_offset`: the compressed length of that segment. */
  gz_size?: number
  /**
   * Extension, in the internal manifest of a zstd shard this library wrote: offset of the zstd
   * frame that holds this member (header, data, padding), from the start of the object.
   */
  zst_offset?: number
  /** Extension, with `zst_offset`: the compressed length of that frame. */
  zst_size?: number
  /** Extension: SHA-256 (hex) of the object's bytes, written by this library, checked with `verify: true`. */
  sha256?: string
  /** Unknown fields are kept as they were read. */
  [field: string]: unknown
}

/** A shard archive: a tar (optionally gzip) holding many members and an internal manifest. */
export interface ShardEntry {
  kind: 'shard'
  archive_key: string
  /** Always `"tar"`. */
  format?: string
  /**
   * `"gzip"`, `"zstd"` (this library only: Python cannot read it), or `null` for a plain tar.
   * **Absent means gzip**, as Python reads it.
   */
  compression?: string | null
  /** Path of the internal manifest inside the archive; default `__manifest__.jsonl`. */
  internal_manifest_path?: string
  /** Number of data members. */
  count?: number | null
  /** Size of the archive object in bytes. */
  size_bytes?: number | null
  /** Python puts `{ "etag": … }` here. */
  meta?: Meta | null
  /**
   * A shard has no `key` (its object is `archive_key`): declared so that `entry.key` on a union
   * of file and shard entries is `string | undefined`, not `unknown`. Narrow on `kind`.
   */
  key?: undefined
  [field: string]: unknown
}

/** A reference to another manifest, whose entries are inlined when refs are resolved. */
export interface ManifestRefEntry {
  kind: 'manifest_ref'
  key: string
  /** A ref names a manifest, not an archive: declared so that `archive_key` on a union of entries is `string | undefined`. */
  archive_key?: undefined
  [field: string]: unknown
}

/** One line of a manifest, discriminated by `kind`. */
export type ManifestEntry = FileEntry | ShardEntry | ManifestRefEntry

/** The kinds of entry this library knows. */
export const ENTRY_KINDS = ['file', 'shard', 'manifest_ref'] as const

/** Default path of a shard's internal manifest. */
export const DEFAULT_INTERNAL_MANIFEST_PATH = '__manifest__.jsonl'

/** Where a line came from, for error messages. */
export interface LineLocation {
  /** Manifest key. */
  key?: string
  /** 1-based line number. */
  lineNumber?: number
}

/** No location (shared: a default object per call would be one more allocation per line). */
const NOWHERE: LineLocation = Object.freeze({})

/**
 * Parses one manifest line. Throws `InvalidManifestError` naming the location on bad JSON, a
 * value that is not an object, a missing or unknown `kind`, or a missing `key` / `archive_key`.
 */
export function parseEntry(line: string, location: LineLocation = NOWHERE): ManifestEntry {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    throw new InvalidManifestError(`invalid JSON: ${(error as Error).message}`, { ...location, cause: error })
  }
  return validateEntry(value, location)
}

/** Checks that a parsed JSON value is a manifest entry; see {@link parseEntry}. */
export function validateEntry(value: unknown, location: LineLocation = NOWHERE): ManifestEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidManifestError(`expected a JSON object, got ${describe(value)}`, location)
  }
  const entry = value as Record<string, unknown>
  const kind: unknown = entry.kind
  if (kind === undefined) throw new InvalidManifestError("missing 'kind' field", location)
  switch (kind) {
    case 'file':
    case 'manifest_ref':
      requireString(entry, 'key', kind as string, location)
      break
    case 'shard':
      requireString(entry, 'archive_key', 'shard', location)
      optionalType(entry, 'compression', STRING_OR_NULL, location)
      optionalType(entry, 'internal_manifest_path', STRING, location)
      optionalType(entry, 'format', STRING, location)
      break
    default:
      throw new InvalidManifestError(`unknown entry kind: ${typeof kind === 'string' ? JSON.stringify(kind) : describe(kind)}`, location)
  }
  optionalType(entry, 'size_bytes', NUMBER_OR_NULL, location)
  return entry as ManifestEntry
}

// The types an optional field may have (made once: validateEntry runs for every line).
const STRING = ['string']
const STRING_OR_NULL = ['string', 'null']
const NUMBER_OR_NULL = ['number', 'null']

function requireString(entry: Record<string, unknown>, field: string, kind: string, location: LineLocation): void {
  const value = entry[field]
  if (value === undefined) throw new InvalidManifestError(`${kind} entry missing '${field}'`, location)
  if (typeof value !== 'string' || value === '') {
    throw new InvalidManifestError(`${kind} entry has an invalid '${field}': ${describe(value)}`, location)
  }
}

function optionalType(entry: Record<string, unknown>, field: string, types: readonly string[], location: LineLocation): void {
  const value = entry[field]
  if (value === undefined) return
  const type = value === null ? 'null' : typeof value
  if (!types.includes(type)) {
    throw new InvalidManifestError(`field '${field}' must be ${types.join(' or ')}, got ${describe(value)}`, location)
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    // Nested too deep to stringify (JSON.parse takes any depth, JSON.stringify does not).
    return `${typeof value} (nested too deep to show)`
  }
  return `${typeof value} ${text && text.length > 40 ? `${text.slice(0, 40)}…` : text}`
}

// Python's json.dumps(ensure_ascii=True) escapes everything outside printable ASCII; DEL included.
const NON_ASCII = /[\u007f-\uffff]/g

/**
 * One compact JSON line (no newline), byte for byte what Python's
 * `json.dumps(entry, separators=(",", ":"))` writes for the same entry: key order kept,
 * non-ASCII as lowercase `\uXXXX` (surrogate pairs for characters beyond the BMP). Fields whose
 * value is `undefined` are left out; write `null` to keep a field. Floats may be written
 * differently from Python (`1.0` is `1` here); integers beyond 2^53 are not representable.
 *
 * Nothing is coerced silently: a value JSON cannot hold (a BigInt, a function, a symbol, a cycle,
 * NaN or ±Infinity, which JSON would write as null, a Map or a Set, which it would write as `{}`),
 * or a `size_bytes` / `count` that is not a non-negative integer, is an `InvalidEntryError` naming
 * the entry's key and the field.
 */
export function serializeEntry(entry: ManifestEntry | Record<string, unknown>): string {
  checkEntryValues(entry)
  const json = JSON.stringify(entry)
  NON_ASCII.lastIndex = 0
  return NON_ASCII.test(json) ? json.replace(NON_ASCII, escapeChar) : json
}

function escapeChar(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/** Throws `InvalidEntryError` for a value of `entry` that its manifest line could not hold as it is (see `serializeEntry`). */
export function checkEntryValues(entry: ManifestEntry | Record<string, unknown>): void {
  const key = entryKeyOf(entry)
  for (const field of ['size_bytes', 'count'] as const) {
    const value = (entry as Record<string, unknown>)[field]
    if (value !== undefined && value !== null && !(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) {
      throw new InvalidEntryError(`must be a non-negative integer or null, got ${describeValue(value)}`, { key, field })
    }
  }
  for (const [field, value] of Object.entries(entry)) checkJsonValue(key, field, value)
}

/** Throws `InvalidEntryError` when `value` (the field `field` of the entry `key`, e.g. its `meta`) cannot be written as JSON as it is. */
export function checkJsonValue(key: string, field: string, value: unknown): void {
  const problem = jsonProblem(value, field, [])
  if (problem) throw new InvalidEntryError(problem.reason, { key, field: problem.path })
}

function jsonProblem(value: unknown, path: string, ancestors: object[]): { path: string; reason: string } | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return undefined
    case 'number':
      return Number.isFinite(value) ? undefined : { path, reason: `is ${value}, which JSON cannot hold (it would be written as null)` }
    case 'bigint':
      return { path, reason: `is a BigInt (${value}n), which JSON cannot hold: use a number or a string` }
    case 'symbol':
    case 'function':
      return { path, reason: `is a ${typeof value}, which JSON cannot hold` }
  }
  if (value === null) return undefined
  const object = value as object
  if (ancestors.includes(object)) return { path, reason: 'refers to itself (a cycle), which JSON cannot hold' }
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') return undefined
  if (object instanceof Map || object instanceof Set) {
    return { path, reason: `is a ${object instanceof Map ? 'Map' : 'Set'}, which JSON would write as {}: use an object or an array` }
  }
  ancestors.push(object)
  try {
    for (const [name, item] of Object.entries(object)) {
      const problem = jsonProblem(item, Array.isArray(object) ? `${path}[${name}]` : `${path}.${name}`, ancestors)
      if (problem) return problem
    }
  } finally {
    ancestors.pop()
  }
  return undefined
}

function entryKeyOf(entry: Record<string, unknown>): string {
  const key = entry.kind === 'shard' ? entry.archive_key : entry.key
  return typeof key === 'string' ? key : '(no key)'
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  return typeof value === 'object' ? 'an object' : String(value)
}

/** The compression of a shard entry: `"gzip"` when the field is absent, `null` for a plain tar. */
export function shardCompression(entry: ShardEntry): string | null {
  return entry.compression === undefined ? 'gzip' : entry.compression
}

/** The internal manifest path of a shard entry, `__manifest__.jsonl` by default. */
export function internalManifestPath(entry: ShardEntry): string {
  return entry.internal_manifest_path ?? DEFAULT_INTERNAL_MANIFEST_PATH
}

/** The key of the S3 object an entry names: `key` for files and refs, `archive_key` for shards. */
export function objectKeyOf(entry: ManifestEntry): string {
  return entry.kind === 'shard' ? entry.archive_key : entry.key
}
