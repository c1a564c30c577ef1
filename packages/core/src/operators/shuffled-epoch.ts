/**
 * `shuffledEpoch(opts)`: a shuffled epoch as one resumable stage, from the manifest's entries (refs
 * resolved) to the mixed order of entries, each with a cursor (`cursorOf`, `withCursor`). It computes
 * exactly what `shuffleUnits` → `partition` → (expand) → `mixEntries` compute (docs/FORMAT.md,
 * "Shuffled epochs"), and also where each output is, so that `after: cursor` resumes right after it.
 *
 * A shuffled cursor is count-based: the epoch's identity (how many entries it permutes and a
 * SHA-256 digest of them), `emitted` (outputs of the mixing buffer handed over) and `low`: the first
 * of this worker's units (loose files, shards) some of whose entries were not yet handed over, and
 * how many buffer inputs the units before it made. The buffer's draws depend only on how many
 * entries go in, never on what they are, so a resumed epoch:
 *
 * - reads the manifest again (the permutation needs every entry) and checks it is the same epoch:
 *   the same entries (`CursorMismatchError`: `rewritten`), none appended (`appended`: the
 *   permutation of n + 1 entries is another one);
 * - does not expand the units before `low.unit` (their shards' heads are not read): it pushes
 *   `low.input` placeholders in their place, which the buffer lets out within the first `emitted`
 *   outputs (a cursor for which it does not is refused);
 * - expands the units from `low.unit` on (for `iterObjects`: one small ranged GET of each shard's
 *   head, its index), recomputes the outputs up to `emitted` without yielding them, and yields the
 *   rest; no body of an item handed over before is fetched.
 *
 * A shard mixed whole (its members have no offsets) whose members are items: a member's cursor is
 * `emitted` up to the shard, with the member's index and path; resuming yields the shard again, with
 * `resumeAfter` for `readPositionedMembers` to read only its members after that one.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, fetchBodies, LruCache, readManifest, readPositionedMembers, shuffledEpoch, withCursor } from '@s3exchange/core'
 *
 * const indexCache = new LruCache(256)
 * const shuffle = { seed: 'run-7', epoch: 3, bufferSize: 5000 }
 * for await (const { entry, body, cursor } of pipe(
 *   readManifest(ctx, 'ds/manifest.jsonl'),
 *   expandRefs(ctx),
 *   shuffledEpoch({
 *     shuffle,
 *     root: 'ds/manifest.jsonl',
 *     after: await loadCursor(), // undefined the first time
 *     expandUnit: (unit) => expandShards(ctx, { indexCache, keepUnlocated: true })([unit]),
 *   }),
 *   expandShards(ctx, { bodies: true, readMembers: readPositionedMembers }), // shards without offsets
 *   fetchBodies(ctx, { concurrency: 16, indexCache }),
 *   withCursor(),
 * )) {
 *   await handle(entry, await body.bytes())
 *   await saveCursor(cursor)
 * }
 * ```
 */
import { createHash } from 'node:crypto'
import {
  checkCursorFits,
  decodeCursor,
  type EpochIdentity,
  isShuffledPosition,
  orderFingerprint,
  type ShuffledCursorPosition,
} from '../format/cursor.js'
import type { ManifestEntry } from '../format/entries.js'
import { CursorMismatchError, InvalidCursorError } from '../format/errors.js'
import { checkShuffle, permute, ShuffleBuffer, type ShuffleOptions, shuffleRandom } from '../format/shuffle-order.js'
import { IN_MEMORY_ROOT } from './cursors.js'
import { checkPartition, PartitionAssigner, type PartitionOptions } from './partition.js'
import { type ItemPosition, positionOf, setPosition } from './positions.js'
import { entryOnly } from './shuffle.js'

/** Options for {@link shuffledEpoch}. */
export interface ShuffledEpochOptions {
  /** The epoch (see `ShuffleOptions`). */
  shuffle: ShuffleOptions
  /** This worker's share of the permuted units (see `partition`). */
  partition?: PartitionOptions | undefined
  /**
   * Resume right after the item this cursor was taken from. It must come from a shuffled epoch of
   * the same manifest, with the same shuffle (seed, epoch, bufferSize), partition, `resolveRefs` and
   * expansion, else `CursorMismatchError` (`reason: 'options'`); the manifest's entries must be those
   * the epoch was made over (`rewritten`, `appended`); a string that is not a cursor is `InvalidCursorError`.
   */
  after?: string | undefined
  /** How cursors name the manifest (its key). Default `(entries in memory)`. */
  root?: string | undefined
  /** Whether the entries given had their refs resolved (recorded in the cursors). Default true. */
  resolveRefs?: boolean | undefined
  /**
   * A unit's entries for the buffer: for `iterObjects`, a shard's members' entries (or the shard
   * whole, when its members cannot be located). Default: the unit itself.
   */
  expandUnit?: ((unit: ManifestEntry) => AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>) | undefined
}

/** One of this worker's units, from `low` on: how many buffer inputs it made, and how many are not yet out. */
interface Unit {
  /** Units it stands for (more than 1 for the placeholder of the units a resumed epoch skips). */
  span: number
  inputs: number
  pending: number
  complete: boolean
}

/** A held entry, or a placeholder for one handed over before the cursor. */
interface Slot {
  entry: ManifestEntry | undefined
  unit: Unit
}

/** The mixed order of the epoch, each output positioned; see the module comment. Bad options and cursors throw here. */
export function shuffledEpoch(
  options: ShuffledEpochOptions,
): (items: AsyncIterable<ManifestEntry> | Iterable<ManifestEntry>) => AsyncGenerator<ManifestEntry, void, undefined> {
  const shuffle = checkShuffle(options.shuffle)
  const partition = options.partition ? checkPartition(options.partition) : undefined
  const root = options.root ?? IN_MEMORY_ROOT
  const expandUnit = options.expandUnit ?? ((unit: ManifestEntry) => [unit])
  const fingerprint = orderFingerprint({
    partition,
    resolveRefs: options.resolveRefs,
    shuffle,
    mixes: options.expandUnit ? 'members' : 'entries',
  })
  let after: ShuffledCursorPosition | undefined
  if (options.after !== undefined) {
    const decoded = decodeCursor(options.after)
    checkCursorFits(decoded, root, fingerprint)
    // A traversal's cursor records no shuffle in its options: it cannot fit; this guards the type.
    if (!isShuffledPosition(decoded)) throw new InvalidCursorError('not a cursor of a shuffled epoch')
    after = decoded
  }
  const resumed = after

  return async function* shuffledEpochStage(items) {
    const units: ManifestEntry[] = []
    for await (const item of items) units.push(entryOnly(item, 'shuffledEpoch'))
    const original = units.slice()
    if (resumed) checkEpoch(resumed, original, root)
    const epoch = epochIdentity(original, resumed?.epoch.digest)
    permute(units, shuffleRandom(shuffle.seed, shuffle.epoch, 'units'))

    const skip = resumed?.emitted ?? 0
    const buffer = new ShuffleBuffer<Slot>(shuffle.bufferSize, shuffleRandom(shuffle.seed, shuffle.epoch, 'buffer'))
    /** This worker's units from `low` on (`head` is the first not yet wholly out). */
    const open: Unit[] = []
    let head = 0
    const low = { unit: 0, input: 0 }
    const advance = () => {
      for (let unit = open[head]; unit?.complete && unit.pending === 0; unit = open[head]) {
        low.unit += unit.span
        low.input += unit.inputs
        open[head++] = undefined as unknown as Unit // let it go
      }
    }
    const position = (emitted: number, at: { unit: number; input: number }): ShuffledCursorPosition => ({
      kind: 'shuffled',
      root,
      options: fingerprint,
      epoch,
      emitted,
      low: { ...at },
    })
    /** An output of the buffer (its index is `buffer.emitted - 1`): the entry to yield, positioned, or undefined when skipped. */
    const out = (slot: Slot): ManifestEntry | undefined => {
      const index = buffer.emitted - 1
      const before = { ...low }
      slot.unit.pending--
      advance()
      if (slot.entry === undefined) {
        if (index < skip) return undefined
        throw new CursorMismatchError(
          root,
          'rewritten',
          `an entry the cursor counted as handed over comes out at ${index + 1} of the mixed order, after the ${skip} handed over: the cursor does not fit this epoch`,
        )
      }
      if (index < skip) return undefined
      // The same entry object twice (entries in memory): each output gets its own, for its own position.
      const entry = positionOf(slot.entry) ? { ...slot.entry } : slot.entry
      const at: ItemPosition = { position: position(index + 1, low) }
      if (entry.kind === 'shard') at.membersAt = position(index, before)
      if (index === skip && resumed?.member) {
        if (entry.kind !== 'shard') {
          throw new CursorMismatchError(root, 'rewritten', `output ${index + 1} of the mixed order is no longer a shard mixed whole`)
        }
        at.resumeAfter = resumed.member
      }
      setPosition(entry, at)
      return entry
    }
    const push = (slot: Slot): ManifestEntry | undefined => {
      slot.unit.inputs++
      slot.unit.pending++
      const pushed = buffer.push(slot)
      return pushed.emitted ? out(pushed.item) : undefined
    }

    if (resumed) {
      // The units wholly handed over: placeholders for their inputs, never expanded.
      const skipped: Unit = { span: resumed.low.unit, inputs: 0, pending: 0, complete: false }
      open.push(skipped)
      for (let i = 0; i < resumed.low.input; i++) push({ entry: undefined, unit: skipped })
      skipped.complete = true
      advance()
    }
    const assigner = partition && partition.count > 1 ? new PartitionAssigner(partition.count) : undefined
    let ordinal = 0
    for (const unit of units) {
      if (assigner && assigner.assign(unit) !== partition?.index) continue
      if (ordinal++ < (resumed?.low.unit ?? 0)) continue
      const current: Unit = { span: 1, inputs: 0, pending: 0, complete: false }
      open.push(current)
      for await (const entry of expandUnit(unit)) {
        const yielded = push({ entry, unit: current })
        if (yielded) yield yielded
      }
      current.complete = true
      advance()
    }
    if (ordinal < (resumed?.low.unit ?? 0)) {
      throw new CursorMismatchError(
        root,
        'rewritten',
        `this worker has ${ordinal} units, fewer than the ${resumed?.low.unit} the cursor passed`,
      )
    }
    for (const slot of buffer.drain()) {
      const yielded = out(slot)
      if (yielded) yield yielded
    }
    if (buffer.emitted < skip) {
      throw new CursorMismatchError(root, 'rewritten', `the epoch has ${buffer.emitted} outputs, fewer than the ${skip} the cursor counted`)
    }
  }
}

/** The identity of the epoch's entries, its digest computed when first asked for (most cursors are never encoded). */
function epochIdentity(entries: ManifestEntry[], known?: string): EpochIdentity {
  let digest = known
  return {
    units: entries.length,
    get digest() {
      digest ??= digestOf(entries, entries.length)
      return digest
    },
  }
}

/** SHA-256 of the first `count` entries as JSON lines, in hex (the first 128 bits). */
function digestOf(entries: ManifestEntry[], count: number): string {
  const hash = createHash('sha256')
  for (let i = 0; i < count; i++) hash.update(`${JSON.stringify(entries[i])}\n`)
  return hash.digest('hex').slice(0, 32)
}

/** The epoch resumed must be the one the cursor was made in: the same entries, none appended. */
function checkEpoch(after: ShuffledCursorPosition, entries: ManifestEntry[], root: string): void {
  const then = after.epoch.units
  const same = entries.length >= then && digestOf(entries, then) === after.epoch.digest
  if (same && entries.length === then) return
  if (same) {
    throw new CursorMismatchError(
      root,
      'appended',
      `the shuffled epoch was made over ${then} entries and ${entries.length - then} were appended since: an epoch's order depends on all its entries, so it cannot go on over more; start the epoch again without the cursor, or keep the manifest unchanged during an epoch`,
    )
  }
  throw new CursorMismatchError(
    root,
    'rewritten',
    `the manifest's entries are not those the shuffled epoch was made over (${then} entries then, ${entries.length} now): it was rewritten since`,
  )
}
