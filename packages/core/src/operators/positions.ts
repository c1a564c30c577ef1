/**
 * Where each item of a positioned traversal is: a side table from the entry object to its
 * position, so that the ordinary stages (`partition`, `expandShards`, `take`, `fetchBodies`),
 * which pass entries through unchanged, carry positions without knowing of them. Entries stay the
 * wire format's plain objects: nothing is added to them.
 *
 * @example
 * ```ts
 * import { cursorOf } from '@s3exchange/core/internals'
 *
 * for await (const entry of traverseManifest(ctx, 'ds/manifest.jsonl')) console.log(entry.kind, cursorOf(entry))
 * ```
 */
import { type CursorPosition, encodeCursor } from '../format/cursor.js'

/** An item's position, and what a resumed traversal still owes of it. */
export interface ItemPosition {
  position: CursorPosition
  /**
   * For the shard a cursor pointed into: resume its members after this one (the shard entry is
   * yielded again, and only its members after it are read).
   */
  resumeAfter?: { index: number; path: string } | undefined
}

const positions = new WeakMap<object, ItemPosition>()

/** Records where `entry` is. */
export function setPosition(entry: object, position: ItemPosition): void {
  positions.set(entry, position)
}

/** Where `entry` is, if it came from a positioned traversal. */
export function positionOf(entry: object): ItemPosition | undefined {
  return positions.get(entry)
}

/** The cursor string of `entry`, if it came from a positioned traversal. */
export function cursorOf(entry: object): string | undefined {
  const found = positions.get(entry)
  return found ? encodeCursor(found.position) : undefined
}
