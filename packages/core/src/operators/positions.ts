/**
 * Where each item of a positioned traversal is, carried by the entry object itself, so that the
 * ordinary stages (`partition`, `expandShards`, `take`, `fetchBodies`), which pass entries through
 * unchanged, carry positions without knowing of them. The position is a non-enumerable property
 * under a symbol of this module: `JSON.stringify`, `Object.keys`, spreading and `structuredClone`
 * do not see it, so entries still read and write as the wire format's plain objects. An entry
 * that cannot take a property (frozen, sealed) has its position in a `WeakMap` instead. (A
 * `WeakMap` for every entry did the same job, but a positioned traversal of a 500,000-entry
 * manifest then took 1.7 times the CPU time and twice the peak memory: the map's upkeep and the
 * garbage collector's handling of its entries.)
 *
 * @example
 * ```ts
 * import { cursorOf } from '@s3exchange/core/internals'
 *
 * for await (const entry of traverseManifest(ctx, 'ds/manifest.jsonl')) console.log(entry.kind, cursorOf(entry))
 * ```
 */
import { type CursorPosition, encodeCursor, type ShuffledCursorPosition } from '../format/cursor.js'

/** An item's position, and what a resumed traversal still owes of it. */
export interface ItemPosition {
  position: CursorPosition | ShuffledCursorPosition
  /**
   * For a shard whose members are items: the position its members' positions are made from (with
   * their `member`), when it is not `position` (a shuffled epoch's shard mixed whole: `position`
   * is after the shard, its members are within it).
   */
  membersAt?: CursorPosition | ShuffledCursorPosition | undefined
  /**
   * For the shard a cursor pointed into: resume its members after this one (the shard entry is
   * yielded again, and only its members after it are read).
   */
  resumeAfter?: { index: number; path: string } | undefined
}

/** The property an entry's position is kept under. */
const POSITION: unique symbol = Symbol('s3exchange.position')

/** Positions of entries that cannot take a property. */
const elsewhere = new WeakMap<object, ItemPosition>()

/** Records where `entry` is. */
export function setPosition(entry: object, position: ItemPosition): void {
  if (Object.hasOwn(entry, POSITION)) (entry as { [POSITION]: ItemPosition })[POSITION] = position
  else if (Object.isExtensible(entry)) Object.defineProperty(entry, POSITION, { value: position, writable: true, configurable: true })
  else elsewhere.set(entry, position)
}

/** Where `entry` is, if it came from a positioned traversal. */
export function positionOf(entry: object): ItemPosition | undefined {
  return (entry as { [POSITION]?: ItemPosition })[POSITION] ?? elsewhere.get(entry)
}

/** The cursor string of `entry`, if it came from a positioned traversal. */
export function cursorOf(entry: object): string | undefined {
  const found = positionOf(entry)
  return found ? encodeCursor(found.position) : undefined
}
