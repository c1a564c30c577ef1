/**
 * Cursors: an item's position in a traversal of a manifest, as an opaque, serialisable string to
 * resume after (`iterObjects(manifest, { after: cursor })`). No I/O here: the string's encoding,
 * what it holds, and the checks that need no S3.
 *
 * A cursor is `base64url(JSON)` of a versioned record (`v: 1`). It holds, from the root down, the
 * line of each manifest on the way to the item (key, ETag of the version read, the line's byte
 * range, and a CRC-32 of the manifest's bytes up to the line's end, so that a manifest rewritten
 * rather than appended to is recognised), the shard member (index and path) when the item is one,
 * the partition's assignment state, the manifests met below the root's own refs (so a resumed
 * traversal reads each manifest once, as the original), and the options that decide the order.
 * A shuffled epoch's cursor (`ShuffledCursorPosition`) holds instead the epoch's identity and
 * counts in its mixed order (see `operators/shuffled-epoch.ts`).
 * Treat it as opaque: its content may change with its version.
 *
 * @example
 * ```ts
 * import { decodeCursor, encodeCursor } from '@s3exchange/core'
 *
 * const cursor = encodeCursor({ root: 'ds/manifest.jsonl', options: '', frames: [{ key: 'ds/manifest.jsonl', etag: 'abc', start: 0, end: 40, startCrc: 0, crc: 1234, line: 1 }], rootRefs: 0, visited: [] })
 * decodeCursor(cursor).frames[0].end // 40
 * ```
 */
import { CursorMismatchError, InvalidCursorError } from './errors.js'
import { DEFAULT_SHUFFLE_BUFFER_SIZE } from './shuffle-order.js'

/** One manifest on the way to an item: the line of it that leads there (a ref) or is the item. */
export interface CursorFrame {
  /** The manifest's key. */
  key: string
  /** The ETag of the version the line was read from (undefined when the server gave none). */
  etag: string | undefined
  /** Byte offset of the line's first byte. */
  start: number
  /** Byte offset just after the line (after its newline, when it has one). */
  end: number
  /** CRC-32 of the manifest's bytes from 0 to `start`. */
  startCrc: number
  /** CRC-32 of the manifest's bytes from 0 to `end`. */
  crc: number
  /** 1-based line number (blank lines counted). */
  line: number
}

/** The partition's assignment state after an item: each worker's total weight and item count. */
export interface PartitionSnapshot {
  loads: number[]
  items: number[]
  knownSum: number
  knownCount: number
}

/** What a cursor holds (see the module comment). */
export interface CursorPosition {
  /** The root manifest's key. */
  root: string
  /** The options that decide the order of the traversal, as {@link orderFingerprint} writes them. */
  options: string
  /** From the root down; the last frame's line is the item, or the shard it is a member of. */
  frames: CursorFrame[]
  /** When the item is a shard member: its index among the archive's regular members (0-based) and its path. */
  member?: { index: number; path: string } | undefined
  /** Refs in the root before its frame's line (then the root is read from its start on resuming). */
  rootRefs: number
  /** Manifests visited below the root's own refs, before the item (they are not read again). */
  visited: string[]
  /** With `partition`: the assignment state after the item. */
  partition?: PartitionSnapshot | undefined
}

/**
 * What a cursor of a shuffled epoch holds (see `operators/shuffled-epoch.ts` for its meaning): the
 * epoch's entries, and how far the mixing buffer's output was handed over.
 */
export interface ShuffledCursorPosition {
  kind: 'shuffled'
  /** The root manifest's key (or how a manifest not stored in S3 is named). */
  root: string
  /** The options that decide the order, as {@link orderFingerprint} writes them (the shuffle included). */
  options: string
  /** The epoch's entries (refs resolved, before the permutation): how many, and a digest of them. */
  epoch: EpochIdentity
  /** Outputs of the mixing buffer handed over whole before the position. */
  emitted: number
  /**
   * The first of the worker's units (shards, loose files, after the permutation and the partition)
   * with an entry not among those `emitted` outputs, and how many buffer inputs the units before it
   * made: those units are wholly handed over, and a resumed epoch does not read them.
   */
  low: { unit: number; input: number }
  /** When the item is a member of the next output, a shard mixed whole: its index among the archive's regular members and its path. */
  member?: { index: number; path: string } | undefined
}

/** The identity of a shuffled epoch's entries. */
export interface EpochIdentity {
  /** How many entries (units) the epoch permutes. */
  readonly units: number
  /** A hex digest of them, in order (computed when first asked for). */
  readonly digest: string
}

/** The options that change the order or the share of a traversal. */
export interface OrderOptions {
  partition?: { index: number; count: number } | undefined
  resolveRefs?: boolean | undefined
  shuffle?: { seed: number | string; epoch?: number | undefined; bufferSize?: number | undefined } | undefined
  /** Under shuffle: what the buffer mixes, shards' members (`iterObjects`) or whole entries (`iterManifestEntries`). */
  mixes?: 'members' | 'entries' | undefined
}

const VERSION = 1

/**
 * A short, readable string of the options that change the order (compared, never parsed). The
 * shuffle's values are normalised as `checkShuffle` reads them: the seed as a string (7 and '7' are
 * one seed), the default `bufferSize` filled in.
 */
export function orderFingerprint(options: OrderOptions): string {
  const parts: string[] = []
  if (options.partition && options.partition.count !== 1) parts.push(`partition=${options.partition.index}/${options.partition.count}`)
  if (options.resolveRefs === false) parts.push('resolveRefs=false')
  if (options.shuffle) {
    const { seed, epoch, bufferSize } = options.shuffle
    parts.push(
      `shuffle=${JSON.stringify([String(seed), epoch ?? 0, bufferSize ?? DEFAULT_SHUFFLE_BUFFER_SIZE, options.mixes ?? 'entries'])}`,
    )
  }
  return parts.join(',')
}

/** Whether a decoded cursor is one of a shuffled epoch. */
export function isShuffledPosition(position: CursorPosition | ShuffledCursorPosition): position is ShuffledCursorPosition {
  return 'kind' in position && position.kind === 'shuffled'
}

/** The cursor string of a position. */
export function encodeCursor(position: CursorPosition | ShuffledCursorPosition): string {
  if (isShuffledPosition(position)) return encodeShuffled(position)
  const record: Record<string, unknown> = {
    v: VERSION,
    r: position.root,
    o: position.options,
    f: position.frames.map((f) => [f.key, f.etag ?? null, f.start, f.end, f.startCrc, f.crc, f.line]),
    n: position.rootRefs,
  }
  if (position.member) record.m = [position.member.index, position.member.path]
  if (position.visited.length > 0) record.d = position.visited
  if (position.partition) {
    const p = position.partition
    record.p = [p.loads, p.items, p.knownSum, p.knownCount]
  }
  return Buffer.from(JSON.stringify(record)).toString('base64url')
}

function encodeShuffled(position: ShuffledCursorPosition): string {
  const { epoch, low } = position
  const record: Record<string, unknown> = {
    v: VERSION,
    r: position.root,
    o: position.options,
    s: [epoch.units, epoch.digest, position.emitted, low.unit, low.input],
  }
  if (position.member) record.m = [position.member.index, position.member.path]
  return Buffer.from(JSON.stringify(record)).toString('base64url')
}

/**
 * The position a cursor string holds (a traversal's, or a shuffled epoch's: `isShuffledPosition`);
 * `InvalidCursorError` when it is not a cursor.
 */
export function decodeCursor(cursor: string): CursorPosition | ShuffledCursorPosition {
  if (typeof cursor !== 'string' || cursor === '') throw new InvalidCursorError(`expected a non-empty string, got ${describe(cursor)}`)
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError('not base64url')
  let record: Record<string, unknown>
  try {
    record = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch (error) {
    throw new InvalidCursorError('not base64url JSON', { cause: error })
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new InvalidCursorError('not a cursor record')
  if (record.v !== VERSION) throw new InvalidCursorError(`unknown version ${describe(record.v)} (this library reads version ${VERSION})`)
  return record.s === undefined ? decodeTraversal(record) : decodeShuffled(record)
}

function decodeShuffled(record: Record<string, unknown>): ShuffledCursorPosition {
  const root = field(record, 'r', isString) as string
  const options = field(record, 'o', (v) => typeof v === 'string') as string
  const [units, digest, emitted, lowUnit, lowInput] = field(
    record,
    's',
    (v) =>
      Array.isArray(v) &&
      v.length === 5 &&
      isCount(v[0]) &&
      typeof v[1] === 'string' &&
      /^[0-9a-f]+$/.test(v[1]) &&
      isCount(v[2]) &&
      isCount(v[3]) &&
      isCount(v[4]) &&
      (v[3] as number) <= (v[0] as number),
  ) as [number, string, number, number, number]
  const position: ShuffledCursorPosition = {
    kind: 'shuffled',
    root,
    options,
    epoch: { units, digest },
    emitted,
    low: { unit: lowUnit, input: lowInput },
  }
  if (record.m !== undefined) position.member = decodeMember(record)
  return position
}

function decodeMember(record: Record<string, unknown>): { index: number; path: string } {
  const [index, path] = field(record, 'm', (v) => Array.isArray(v) && v.length === 2 && isCount(v[0]) && isString(v[1])) as [number, string]
  return { index, path }
}

function decodeTraversal(record: Record<string, unknown>): CursorPosition {
  const root = field(record, 'r', isString)
  const options = field(record, 'o', (v) => typeof v === 'string')
  const rootRefs = field(record, 'n', isCount)
  const frames = field(record, 'f', (v) => Array.isArray(v) && v.length > 0 && v.every(isFrame)) as unknown[][]
  const position: CursorPosition = {
    root: root as string,
    options: options as string,
    rootRefs: rootRefs as number,
    frames: frames.map(([key, etag, start, end, startCrc, crc, line]) => ({
      key: key as string,
      etag: (etag as string | null) ?? undefined,
      start: start as number,
      end: end as number,
      startCrc: startCrc as number,
      crc: crc as number,
      line: line as number,
    })),
    visited: (record.d === undefined ? [] : field(record, 'd', (v) => Array.isArray(v) && v.every(isString))) as string[],
  }
  if (position.frames[0]?.key !== position.root) throw new InvalidCursorError('its first frame is not its root')
  if (record.m !== undefined) position.member = decodeMember(record)
  if (record.p !== undefined) {
    const isNumbers = (v: unknown) => Array.isArray(v) && v.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)
    const [loads, items, knownSum, knownCount] = field(
      record,
      'p',
      (v) =>
        Array.isArray(v) && v.length === 4 && isNumbers(v[0]) && isNumbers(v[1]) && v[0].length === v[1].length && isNumbers([v[2], v[3]]),
    ) as [number[], number[], number, number]
    position.partition = { loads, items, knownSum, knownCount }
  }
  return position
}

/**
 * Checks that a decoded cursor was made for this root and these options; `CursorMismatchError`
 * (`reason` `manifest` or `options`) when not.
 */
export function checkCursorFits(position: CursorPosition | ShuffledCursorPosition, root: string, options: string): void {
  if (position.root !== root) {
    throw new CursorMismatchError(root, 'manifest', `the cursor was made for the manifest ${position.root}`)
  }
  if (position.options !== options) {
    const made = position.options === '' ? 'no partition or shuffle' : position.options
    const given = options === '' ? 'none' : options
    throw new CursorMismatchError(
      root,
      'options',
      `the cursor was made with ${made}, resumed with ${given} (${differing(position.options, options)}): resume with the same options`,
    )
  }
}

/** The names of the options two fingerprints disagree on, for a message: `shuffle differs`, `partition, shuffle differ`. */
function differing(made: string, given: string): string {
  const parse = (fingerprint: string) =>
    new Map(
      fingerprint
        .split(/,(?=(?:partition|resolveRefs|shuffle)=)/)
        .filter((part) => part !== '')
        .map((part) => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)]),
    )
  const [a, b] = [parse(made), parse(given)]
  const names = ['partition', 'resolveRefs', 'shuffle'].filter((name) => a.get(name) !== b.get(name))
  return `${names.join(', ')} ${names.length === 1 ? 'differs' : 'differ'}`
}

function field(record: Record<string, unknown>, name: string, ok: (value: unknown) => boolean): unknown {
  const value = record[name]
  if (!ok(value)) throw new InvalidCursorError(`field '${name}' is missing or malformed`)
  return value
}

function isString(value: unknown): value is string {
  return typeof value === 'string' && value !== ''
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isFrame(value: unknown): boolean {
  if (!Array.isArray(value) || value.length !== 7) return false
  const [key, etag, start, end, startCrc, crc, line] = value
  return (
    isString(key) &&
    (etag === null || typeof etag === 'string') &&
    isCount(start) &&
    isCount(end) &&
    (end as number) > (start as number) &&
    isCount(startCrc) &&
    isCount(crc) &&
    isCount(line)
  )
}

function describe(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value)
}
