/**
 * `partition({ index, count })`: keeps worker `index`'s share of the items, out of `count`
 * workers. Every worker runs the same stage over the same entry sequence and computes the same
 * assignment, with no coordination: the shares are disjoint, their union is the input, and each
 * share keeps input order. Place it after `expandRefs` and before `expandShards`, so that its
 * items are whole `file` and `shard` entries: a shard is never split across workers.
 *
 * The assignment is greedy and streaming: each item goes to the worker with the least total
 * weight so far (ties: fewer items, then the lowest index). An item's weight is its `size_bytes`
 * (a shard's: the archive's size) when known, else the mean of the sizes known so far (1 before
 * any). With equal weights that is round robin; with known sizes the heaviest and lightest shares
 * differ by at most the largest single item. Each item's worker depends only on the items before
 * it, so a manifest that grows at its end (`append_parts`) keeps earlier assignments; but every
 * worker must read the same sequence, so do not change a manifest while workers read it.
 *
 * Every worker reads every entry (not the objects): the cost of a share is the manifest read
 * plus the share's own objects. Items that carry a body and are not this worker's have the body
 * destroyed (released) before the next item is pulled.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, expandShards, fetchBodies, partition, readManifest } from '@s3exchange/core'
 *
 * const [index, count] = [Number(process.env.WORKER_INDEX), Number(process.env.WORKER_COUNT)]
 * for await (const { entry, body } of pipe(
 *   readManifest(ctx, 'ds/manifest.jsonl'),
 *   expandRefs(ctx),
 *   partition({ index, count }),          // this worker's whole shards and loose files
 *   expandShards(ctx, { bodies: true }),
 *   fetchBodies(ctx, { concurrency: 16 }),
 * )) {
 *   console.log(entry.key, (await body.bytes()).byteLength)
 * }
 * ```
 */
import type { ManifestEntry } from '../format/entries.js'
import { ConfigurationError } from '../format/errors.js'
import { checkOptions } from '../format/options.js'
import { hasBody, type PipelineItem } from '../s3/body.js'

/** Options for {@link partition}: which share to keep. */
export interface PartitionOptions {
  /** This worker's number, an integer from 0 to `count - 1`. */
  index: number
  /** How many workers share the items, an integer ≥ 1. With 1, every item is kept. */
  count: number
}

interface Worker {
  index: number
  /** Total weight assigned so far. */
  load: number
  /** Items assigned so far. */
  items: number
}

/** Keeps worker `index`'s share of the items; see the module comment. Throws `ConfigurationError` on a bad index or count. */
export function partition(
  options: PartitionOptions,
): <I extends PipelineItem>(items: AsyncIterable<I> | Iterable<I>) => AsyncGenerator<I, void, undefined> {
  const { index, count } = checkPartition(options)
  return async function* partitionStage<I extends PipelineItem>(items: AsyncIterable<I> | Iterable<I>): AsyncGenerator<I, void, undefined> {
    if (count === 1) {
      yield* items
      return
    }
    // A min-heap of the workers by (load, items, index): a total order, so the least-loaded
    // worker is always one and the same on every machine.
    const heap: Worker[] = Array.from({ length: count }, (_, i) => ({ index: i, load: 0, items: 0 }))
    let knownSum = 0
    let knownCount = 0
    for await (const item of items) {
      const size = knownSize(hasBody(item) ? item.entry : (item as ManifestEntry))
      let weight: number
      if (size === undefined) weight = knownCount === 0 ? 1 : knownSum / knownCount
      else {
        weight = size
        knownSum += size
        knownCount++
      }
      const worker = heap[0] as Worker
      worker.load += weight
      worker.items++
      siftDown(heap)
      if (worker.index === index) yield item
      else if (hasBody(item)) item.body.destroy()
    }
  }
}

/** Validates partition options (the option rules, then index < count); throws `ConfigurationError` naming the bad field. */
function checkPartition(options: PartitionOptions): PartitionOptions {
  checkOptions('partition', { partition: options ?? null })
  const { index, count } = options
  if (index >= count) {
    throw new ConfigurationError(`partition: partition.index must be an integer from 0 to ${count - 1} (count - 1), got ${String(index)}`, {
      call: 'partition',
      option: 'partition.index',
    })
  }
  return { index, count }
}

/** `size_bytes` when it is a usable size (a finite number ≥ 0), else undefined. */
function knownSize(entry: ManifestEntry): number | undefined {
  const size = entry.size_bytes
  return typeof size === 'number' && Number.isFinite(size) && size >= 0 ? size : undefined
}

function before(a: Worker, b: Worker): boolean {
  if (a.load !== b.load) return a.load < b.load
  if (a.items !== b.items) return a.items < b.items
  return a.index < b.index
}

/** Restores the heap after its top grew (loads and item counts only ever grow). */
function siftDown(heap: Worker[]): void {
  const n = heap.length
  let i = 0
  for (;;) {
    const left = 2 * i + 1
    if (left >= n) return
    const right = left + 1
    const child = right < n && before(heap[right] as Worker, heap[left] as Worker) ? right : left
    if (!before(heap[child] as Worker, heap[i] as Worker)) return
    ;[heap[i], heap[child]] = [heap[child] as Worker, heap[i] as Worker]
    i = child
  }
}
