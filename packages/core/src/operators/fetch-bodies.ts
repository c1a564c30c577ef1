/**
 * `fetchBodies(ctx, opts)`: turns entries into `{ entry, body }`, fetching up to `concurrency`
 * objects at once ahead of the consumer and yielding them in input order. Small objects are read
 * into memory while they wait, within a byte budget (`maxBufferedBytes`); larger ones wait as open
 * streams. Items that already carry a body (shard members from `expandShards`) pass through, and
 * nothing past them is pulled from the input until the consumer has moved on, because their
 * bodies stream out of the input itself. A missing object throws `ObjectNotFoundError` in its
 * turn (or is skipped, with `onMissing: 'skip'`). Breaking out of the loop cancels what was fetched ahead.
 *
 * What is fetched: a file's `key` (an archive member for virtual keys), a shard's `archive_key`,
 * a ref's manifest.
 *
 * @example
 * ```ts
 * import { pipe } from 'it-pipe'
 * import { expandRefs, fetchBodies, readManifest } from '@s3exchange/core'
 *
 * const objects = pipe(readManifest(ctx, 'ds/manifest.jsonl'), expandRefs(ctx), fetchBodies(ctx, { concurrency: 16 }))
 * for await (const { entry, body } of objects) console.log(entry.key, (await body.bytes()).byteLength)
 * ```
 */

import { openEntryObject } from '../archive/open-object.js'
import type { OpenMemberOptions } from '../archive/random-access.js'
import type { ManifestEntry } from '../format/entries.js'
import { ObjectNotFoundError } from '../format/errors.js'
import { iteratorOf } from '../format/iterables.js'
import type { EntryWithBody } from '../s3/body.js'
import { expectationOf, hasBody, ObjectBody, type PipelineItem, type VerifyOptions } from '../s3/body.js'
import type { S3Context } from '../s3/context.js'
import { collectSource, objectBodyFrom, openObjectSource } from '../s3/object-source.js'

/** Options for {@link fetchBodies}. */
export interface FetchBodiesOptions extends VerifyOptions, Pick<OpenMemberOptions, 'indexCache'> {
  /** Requests in flight at once. Default 16. */
  concurrency?: number
  /**
   * Bytes of fetched-ahead objects held in memory at once, not counting what was handed over.
   * Objects that do not fit wait as open streams instead. Default 64 MiB.
   */
  maxBufferedBytes?: number
  /** What to do when an object does not exist: throw `ObjectNotFoundError` (default) or skip the entry. */
  onMissing?: 'throw' | 'skip'
}

/** Default requests in flight for `fetchBodies`. */
export const DEFAULT_FETCH_CONCURRENCY = 16
/** Default byte budget of `fetchBodies`. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024

interface Slot<E extends ManifestEntry> {
  result: Promise<EntryWithBody<E>>
  /** Bytes of the budget this slot holds while it waits. */
  reserved: number
  /** Cancels the request (not once the item was handed over). */
  abort?: AbortController
  /** An item of the input that carries its own body. */
  passThrough: boolean
}

/** Fetches the bodies of entries, ahead and in order; see the module comment. */
export function fetchBodies(ctx: S3Context, options: FetchBodiesOptions = {}) {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_FETCH_CONCURRENCY)
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES
  const skipMissing = options.onMissing === 'skip'
  const checked = (entry: ManifestEntry, body: ObjectBody): ObjectBody =>
    options.verify && entry.kind !== 'manifest_ref' ? body.expect(expectationOf(entry)) : body

  return async function* fetchBodiesStage<E extends ManifestEntry>(
    items: AsyncIterable<E | EntryWithBody<E>> | Iterable<E | EntryWithBody<E>>,
  ): AsyncGenerator<EntryWithBody<E>, void, undefined> {
    const input = iteratorOf(items)
    const window: Slot<E>[] = []
    let inFlight = 0
    let buffered = 0
    let inputDone = false
    let waitingOnPassThrough = false
    let closed = false
    let filling: Promise<void> | undefined
    let inputFailure: { error: unknown } | undefined

    const start = (entry: E): Slot<E> => {
      const abort = new AbortController()
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal
      const slot: Slot<E> = { reserved: 0, abort, passThrough: false, result: undefined as never }
      inFlight++
      slot.result = (async () => {
        try {
          const fetchCtx = { ...ctx, signal }
          if (isLooseKey(entry)) {
            // The common case, made cheap: a small object is read straight into memory.
            const { info, source } = await openObjectSource(fetchCtx, entry.key)
            const size = info.size
            if (size !== undefined && size <= maxBufferedBytes - buffered) {
              buffered += size
              slot.reserved = size
              return { entry, body: checked(entry, ObjectBody.fromBytes(info, await collectSource(fetchCtx, entry.key, source))) }
            }
            return { entry, body: checked(entry, objectBodyFrom(fetchCtx, info, source)) }
          }
          const body = await openEntryObject(fetchCtx, entry, { indexCache: options.indexCache })
          const size = body.size
          if (size !== undefined && !body.buffered && size <= maxBufferedBytes - buffered) {
            buffered += size
            slot.reserved = size
            const bytes = await body.bytes()
            return { entry, body: checked(entry, ObjectBody.fromBytes(body, bytes)) }
          }
          return { entry, body: checked(entry, body) }
        } finally {
          inFlight--
          // Keep `concurrency` requests going while the consumer waits on an earlier, slower one.
          void refill()
        }
      })()
      slot.result.catch(ignore)
      return slot
    }

    const fill = async () => {
      while (!closed && !inputDone && !waitingOnPassThrough && window.length < concurrency * 4 && inFlight < concurrency) {
        const next = await input.next()
        if (next.done) {
          inputDone = true
          return
        }
        const item = next.value as PipelineItem
        if (closed) {
          if (hasBody(item)) item.body.destroy()
          return
        }
        if (hasBody(item)) {
          window.push({ result: Promise.resolve(item as EntryWithBody<E>), reserved: 0, passThrough: true })
          waitingOnPassThrough = true
          return
        }
        window.push(start(item as E))
      }
    }

    /** Pulls from the input, one pull at a time; an input failure is raised after the items before it. */
    const refill = (): Promise<void> => {
      if (filling === undefined && !closed) {
        filling = fill()
          .catch((error: unknown) => {
            inputDone = true
            inputFailure ??= { error }
          })
          .finally(() => {
            filling = undefined
          })
      }
      return filling ?? Promise.resolve()
    }

    try {
      for (;;) {
        void refill()
        while (window.length === 0 && !inputDone) await refill()
        const slot = window.shift()
        if (slot === undefined) {
          if (inputFailure) throw inputFailure.error
          return
        }
        let item: EntryWithBody<E>
        try {
          item = await slot.result
        } catch (error) {
          if (skipMissing && error instanceof ObjectNotFoundError) continue
          throw error
        } finally {
          buffered -= slot.reserved
        }
        if (ctx.signal?.aborted) {
          item.body.destroy()
          throw ctx.signal.reason
        }
        yield item
        // Only now may the input move past an item that brought its own body: the consumer is done with it.
        if (slot.passThrough) waitingOnPassThrough = false
      }
    } finally {
      closed = true
      await filling
      for (const slot of window) {
        slot.abort?.abort()
        slot.result.then((item) => item.body.destroy(), ignore)
      }
      window.length = 0
      await input.return?.()
    }
  }
}

/** A file entry for a plain object: not an archive member, no `#` that might make it one. */
function isLooseKey(entry: ManifestEntry): entry is ManifestEntry & { kind: 'file' } {
  return entry.kind === 'file' && entry.archive_key === undefined && !entry.key.includes('#')
}

function ignore(): void {}
