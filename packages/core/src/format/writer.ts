/**
 * The writer protocol: every writer of this library (an object, a shard archive, a manifest, a
 * manifest's parts) takes items with `add`, publishes with `finish`, and gives up with `abort`.
 * Abort happens at one level: a writer that fails while writing (an upload, a stream that breaks)
 * aborts itself, and what it started with it (an item refused before anything was written, such
 * as a bad member path, leaves it open); `abort` is for a caller that stops for a reason of its
 * own, and is safe to call twice. `writeAll` is the one loop that drains a source into a writer:
 * it aborts the writer when the source fails.
 *
 * @example
 * ```ts
 * import { ShardWriter, writeAll } from '@s3exchange/core'
 *
 * const entry = await writeAll(new ShardWriter(ctx, 'ds/shards/shard-00000.tar'), items) // a ShardEntry
 * ```
 */

/** Something items are written into, then published (`finish`) or given up (`abort`). */
export interface Writer<Item, Result> {
  /** Adds one item; resolves when it is accepted. A failure while writing leaves the writer aborted. */
  add(item: Item): Promise<unknown>
  /** Publishes what was added. A failure leaves the writer aborted. */
  finish(): Promise<Result>
  /** Gives up: nothing is published, what was started is cleaned up. Safe to call twice. */
  abort(): Promise<unknown>
}

/** Adds every item of `source` to `writer` and finishes it; on any failure, aborts it and rethrows. */
export async function writeAll<Item, Result>(writer: Writer<Item, Result>, source: AsyncIterable<Item> | Iterable<Item>): Promise<Result> {
  try {
    for await (const item of source) await writer.add(item)
    return await writer.finish()
  } catch (error) {
    await writer.abort()
    throw error
  }
}
