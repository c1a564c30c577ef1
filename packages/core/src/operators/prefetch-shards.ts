/**
 * Parallel shard prefetch for `expandShards(ctx, { bodies: true, shardConcurrency })`: while the
 * consumer reads the members of one shard, the next `shardConcurrency - 1` shards are already
 * being read, their members held in memory within a byte budget (`maxBufferedBytes`). Output stays
 * in manifest order. A member that does not fit in the budget is not buffered, and its archive is
 * not held open while it waits (that connection may be the one the consumer needs next): the
 * archive is closed, and when its turn comes it is read again from that member on, pinned to the
 * ETag of its first read (`If-Match`), and streamed live. The shard being consumed never waits for
 * the budget. At most `shardConcurrency` archives are read at once: the one consumed and those
 * read ahead.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, readManifest } from '@s3exchange/core'
 *
 * const members = pipe(
 *   readManifest(ctx, 'ds/manifest.jsonl'),
 *   expandRefs(ctx),
 *   expandShards(ctx, { bodies: true, shardConcurrency: 4, maxBufferedBytes: 256 << 20 }),
 * )
 * ```
 */

import { type ShardReadOptions, shardMembers } from '../archive/scan-archive.js'
import { Budget } from '../format/budget.js'
import type { FileEntry, ShardEntry } from '../format/entries.js'
import { iteratorOf } from '../format/iterables.js'
import { type EntryWithBody, hasBody, ObjectBody, type PipelineItem } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'

/** What {@link prefetchShards} needs: how many archives to read at once, and the byte budget (see `ExpandShardsOptions`). */
export type PrefetchShardsOptions = ShardReadOptions & { shardConcurrency: number; maxBufferedBytes: number }

/** Reads one shard ahead of its turn; see the module comment. */
class ShardPrefetcher {
  readonly #ctx: S3Context
  readonly #shard: ShardEntry
  readonly #options: ShardReadOptions
  readonly #budget: Budget
  readonly #buffered: { item: EntryWithBody<FileEntry>; bytes: number }[] = []
  #members: AsyncGenerator<EntryWithBody<FileEntry>>
  /** The archive's ETag, from its first GET: a resumed read insists on that version. */
  #etag: string | undefined
  /** Members taken out of the archive so far (buffered, or handed over). */
  #taken = 0
  /** A member read but not buffered (its turn came): handed over live. */
  #live: EntryWithBody<FileEntry> | undefined
  #done = false
  /** The archive was let go of, for lack of room in the budget: read it again from member `#taken` when its turn comes. */
  #parked = false
  #failure: { error: unknown } | undefined
  /** Set when the consumer reaches this shard, or it is closed: buffering stops. */
  #stop = false
  readonly #pumping: Promise<void>

  constructor(ctx: S3Context, shard: ShardEntry, budget: Budget, options: ShardReadOptions) {
    this.#ctx = ctx
    this.#shard = shard
    this.#options = options
    this.#budget = budget
    this.#members = shardMembers(ctx, shard, { ...options, onOpen: (archive) => (this.#etag = archive.etag) })
    this.#pumping = this.#pump()
  }

  /**
   * Buffers members while the budget has room, until told to stop. A member that does not fit is
   * not waited on with the archive open (its connection may be the one the consumer needs): the
   * archive is closed, and read again from that member in its turn.
   */
  async #pump(): Promise<void> {
    try {
      while (!this.#stop) {
        const next = await this.#members.next()
        if (next.done) {
          this.#done = true
          return
        }
        const item = next.value
        const size = item.body.size
        if (size === undefined || !this.#budget.tryTake(size)) {
          if (this.#stop || size === undefined) {
            this.#live = item
            this.#taken++
            return
          }
          this.#parked = true
          await this.#members.return(undefined)
          return
        }
        const bytes = await item.body.bytes()
        this.#taken++
        this.#buffered.push({ item: { entry: item.entry, body: ObjectBody.fromBytes(item.body, bytes) }, bytes: size })
      }
    } catch (error) {
      this.#failure = { error }
    }
  }

  /** The members, in order: the buffered ones, then the rest streamed live. */
  async *take(): AsyncGenerator<EntryWithBody<FileEntry>> {
    this.#stop = true
    try {
      await this.#pumping
      for (let next = this.#buffered.shift(); next; next = this.#buffered.shift()) {
        this.#budget.give(next.bytes)
        yield next.item
        next.item.body.abandon()
      }
      if (this.#failure) throw this.#failure.error
      if (this.#live) {
        const live = this.#live
        this.#live = undefined
        yield live
      }
      if (this.#parked) {
        this.#members = shardMembers(this.#ctx, this.#shard, { ...this.#options, ifMatch: this.#etag, skip: this.#taken })
      } else if (this.#done) return
      yield* this.#members
    } finally {
      await this.close()
    }
  }

  /** Stops reading and lets go of what is held. */
  async close(): Promise<void> {
    this.#stop = true
    await this.#pumping
    for (const { bytes } of this.#buffered.splice(0)) this.#budget.give(bytes)
    this.#live?.body.destroy()
    this.#live = undefined
    await this.#members.return(undefined)
  }
}

/** Most items held ahead of the consumer while looking for the next shards. */
const MAX_LOOKAHEAD = 1024

/** Expands shard entries with prefetch; other items pass through. See the module comment. */
export function prefetchShards(ctx: S3Context, options: PrefetchShardsOptions) {
  const ahead = Math.max(1, options.shardConcurrency - 1)
  return async function* prefetchShardsStage(
    items: AsyncIterable<PipelineItem> | Iterable<PipelineItem>,
  ): AsyncGenerator<Exclude<PipelineItem, ShardEntry> | EntryWithBody<FileEntry>, void, undefined> {
    const budget = new Budget(options.maxBufferedBytes)
    const input = iteratorOf(items)
    const window: (PipelineItem | ShardPrefetcher)[] = []
    let inputDone = false
    /** Shard readers in the window (counted, not scanned for: the window can be long). */
    let readers = 0
    const fill = async () => {
      // Look ahead until `ahead` shards are being read, or MAX_LOOKAHEAD items wait (loose entries
      // between shards: without a bound, a manifest of loose files would be read whole before the
      // first item). An item with its own body stops the look: its body streams out of the input
      // itself (it is always the last item of the window).
      while (!inputDone && readers < ahead + 1 && window.length < MAX_LOOKAHEAD) {
        const last = window.at(-1)
        if (last !== undefined && !(last instanceof ShardPrefetcher) && hasBody(last)) return
        const next = await input.next()
        if (next.done) {
          inputDone = true
          return
        }
        const item = next.value
        if (!hasBody(item) && item.kind === 'shard') {
          window.push(new ShardPrefetcher(ctx, item, budget, options))
          readers++
        } else window.push(item)
      }
    }
    try {
      for (;;) {
        await fill()
        const head = window.shift()
        if (head === undefined) return
        if (head instanceof ShardPrefetcher) {
          readers--
          yield* head.take()
        } else yield head as Exclude<PipelineItem, ShardEntry>
      }
    } finally {
      for (const item of window) if (item instanceof ShardPrefetcher) await item.close()
      await input.return?.()
    }
  }
}
