/**
 * `fetchBodies(ctx, opts)`: turns entries into `{ entry, body }`, fetching objects ahead of the
 * consumer and yielding them in input order. Objects that fit in a byte budget
 * (`maxBufferedBytes`) are read into memory while they wait; the next one to be handed over may
 * wait as an open stream; any other that does not fit is not held open: its request is closed and
 * sent again when its turn comes (or not sent ahead at all, when its entry's `size_bytes` already
 * says it cannot fit). So the stage holds at most `concurrency` connections, whatever the objects'
 * sizes and whatever the consumer skips: requests in flight, the next object's stream, and the
 * body being read. Items that already carry a body (shard members from `expandShards`) pass
 * through, and nothing past them is pulled from the input until the consumer has moved on,
 * because their bodies stream out of the input itself. When the consumer asks for the next item,
 * the body of the previous one is released if it was not read to the end (its connection closed;
 * reading it later is `BodyConsumedError`). A missing object throws `ObjectNotFoundError` in its
 * turn (or is skipped, with `onMissing: 'skip'`). Breaking out of the loop cancels what was
 * fetched ahead.
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
 *
 * (Just over 300 lines: the byte budget, the connection window and the release of unread bodies are
 * one state machine.)
 */

import { openEntryObject } from '../archive/open-object.js'
import type { OpenMemberOptions } from '../archive/random-access.js'
import { Budget } from '../format/budget.js'
import type { ManifestEntry } from '../format/entries.js'
import { ObjectNotFoundError } from '../format/errors.js'
import { iteratorOf } from '../format/iterables.js'
import { checkOptions } from '../format/options.js'
import type { EntryWithBody } from '../s3/body.js'
import { expectationOf, hasBody, ObjectBody, type PipelineItem, type VerifyOptions } from '../s3/body.js'
import { checkContext, type S3Context } from '../s3/context.js'
import { collectSource, objectBodyFrom, openObjectSource } from '../s3/object-source.js'

/** Options for {@link fetchBodies}. */
export interface FetchBodiesOptions extends VerifyOptions, Pick<OpenMemberOptions, 'indexCache'> {
  /**
   * Connections held at once, an integer from 1 to 1024: requests in flight, plus the next
   * object's open stream and the body being read, when they are streamed rather than buffered.
   * Default 32 (`DEFAULT_FETCH_CONCURRENCY`).
   */
  concurrency?: number
  /**
   * Bytes of fetched-ahead objects held in memory at once, not counting what was handed over.
   * Objects that do not fit are streamed in their turn instead. Default 64 MiB.
   */
  maxBufferedBytes?: number
  /** What to do when an object does not exist: throw `ObjectNotFoundError` (default) or skip the entry. */
  onMissing?: 'throw' | 'skip'
}

/**
 * Default connections of `fetchBodies` (its `concurrency`). 32: at a real S3's 20–50 ms to first
 * byte, loose reads are bound by requests in flight, and 32 kept up with the raw SDK where 16 left
 * half the rate on the table at 50 ms (bench/RESULTS.md, latency table; docs/DESIGN-NOTES.md).
 */
export const DEFAULT_FETCH_CONCURRENCY = 32
/** Default byte budget of `fetchBodies`. */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024

/** One item of the window, in input order. */
interface Slot<E extends ManifestEntry> {
  /** The entry to fetch, or the item of the input that carries its own body. */
  entry: E
  passThrough: EntryWithBody<E> | undefined
  /** The request in flight: resolves to the body, or to undefined when it was closed for later. */
  fetching: Promise<ObjectBody | undefined> | undefined
  /** Bytes of the budget this slot holds while it waits (a body read into memory). */
  reserved: number
  /** Cancels the request in flight (not once the item was handed over). */
  abort: AbortController | undefined
  /** True for the next slot to be handed over: its body may wait as an open stream. */
  head: boolean
  /** Not to be fetched ahead: it does not fit in the byte budget; fetched when it is the head. */
  later: boolean
}

/** Fetches the bodies of entries, ahead and in order; see the module comment. */
export function fetchBodies(ctx: S3Context, options: FetchBodiesOptions = {}) {
  checkContext('fetchBodies', ctx)
  checkOptions('fetchBodies', options)
  const concurrency = options.concurrency ?? DEFAULT_FETCH_CONCURRENCY
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES
  const skipMissing = options.onMissing === 'skip'
  const lookahead = concurrency * 4
  const checked = (entry: ManifestEntry, body: ObjectBody): ObjectBody =>
    options.verify && entry.kind !== 'manifest_ref' ? body.expect(expectationOf(entry)) : body

  return async function* fetchBodiesStage<E extends ManifestEntry>(
    items: AsyncIterable<E | EntryWithBody<E>> | Iterable<E | EntryWithBody<E>>,
  ): AsyncGenerator<EntryWithBody<E>, void, undefined> {
    const input = iteratorOf(items)
    const connections = new Budget(concurrency)
    const window: Slot<E>[] = []
    let buffered = 0
    let inputDone = false
    let waitingOnPassThrough = false
    let closed = false
    let pulling: Promise<void> | undefined
    let inputFailure: { error: unknown } | undefined

    /** Gives a connection back, and lets the freed connection start the next fetches. */
    const release = () => {
      connections.give(1)
      if (!closed) void refill()
    }
    /** Gives the slot's connection back when `body` is let go (read to the end, released or destroyed). */
    const holdUntilClosed = (body: ObjectBody) => {
      if (body.closed) release()
      else body.once('close', release)
    }

    /** Fetches a slot's object with a connection already taken; see the module comment for what is kept. */
    const fetch = (slot: Slot<E>): void => {
      const entry = slot.entry
      const abort = new AbortController()
      const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal
      const fetchCtx = { ...ctx, signal }
      slot.abort = abort
      const fits = (size: number | undefined) => size !== undefined && size <= maxBufferedBytes - buffered
      slot.fetching = (async (): Promise<ObjectBody | undefined> => {
        let held = true
        try {
          let body: ObjectBody
          if (isLooseKey(entry)) {
            // The common case, made cheap: a small object is read straight into memory.
            const { info, source } = await openObjectSource(fetchCtx, entry.key)
            if (fits(info.size)) {
              buffered += info.size as number
              slot.reserved = info.size as number
              const bytes = await collectSource(fetchCtx, entry.key, source)
              return checked(entry, ObjectBody.fromBytes(info, bytes))
            }
            if (!slot.head) return closeForLater(slot, () => source.destroy())
            body = objectBodyFrom(fetchCtx, info, source)
          } else {
            body = await openEntryObject(fetchCtx, entry, { indexCache: options.indexCache })
            if (body.buffered) return checked(entry, body)
            if (fits(body.size)) {
              buffered += body.size as number
              slot.reserved = body.size as number
              const bytes = await body.bytes()
              return checked(entry, ObjectBody.fromBytes(body, bytes))
            }
            if (!slot.head) return closeForLater(slot, () => body.destroy())
          }
          // Handed over as an open stream: the connection is held until the body is let go.
          held = false
          holdUntilClosed(body)
          return checked(entry, body)
        } finally {
          if (held) release()
        }
      })()
      slot.fetching.catch(ignore)
    }

    /** A fetched-ahead object that does not fit: closed now, fetched again when it is the head. */
    const closeForLater = (slot: Slot<E>, close: () => void): undefined => {
      close()
      slot.later = true
      slot.fetching = undefined
      return undefined
    }

    /** Starts what may be fetched ahead, and reads more of the input, while connections are free. */
    const pump = async (): Promise<void> => {
      for (const slot of window) {
        if (closed || connections.available === 0) return
        const ahead = !slot.later || slot.head
        if (slot.passThrough === undefined && slot.fetching === undefined && ahead && connections.tryTake(1)) fetch(slot)
      }
      while (
        !closed &&
        !inputDone &&
        !waitingOnPassThrough &&
        window.length < lookahead &&
        (window.length === 0 || connections.available > 0)
      ) {
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
          window.push({
            entry: item.entry as E,
            passThrough: item as EntryWithBody<E>,
            fetching: undefined,
            reserved: 0,
            abort: undefined,
            head: false,
            later: false,
          })
          waitingOnPassThrough = true
          return
        }
        const entry = item as E
        const size = entry.kind === 'file' && typeof entry.size_bytes === 'number' ? entry.size_bytes : undefined
        const slot: Slot<E> = {
          entry,
          passThrough: undefined,
          fetching: undefined,
          reserved: 0,
          abort: undefined,
          head: window.length === 0,
          later: size !== undefined && size > maxBufferedBytes,
        }
        window.push(slot)
        if ((!slot.later || slot.head) && connections.tryTake(1)) fetch(slot)
      }
    }

    /** Runs `pump`, one run at a time; an input failure is raised after the items before it. */
    const refill = (): Promise<void> => {
      if (pulling === undefined && !closed) {
        pulling = pump()
          .catch((error: unknown) => {
            inputDone = true
            inputFailure ??= { error }
          })
          .finally(() => {
            pulling = undefined
          })
      }
      return pulling ?? Promise.resolve()
    }

    /** The body of the head slot: fetched now if it was not fetched ahead, or was closed for later. */
    const bodyOf = async (slot: Slot<E>): Promise<ObjectBody> => {
      for (;;) {
        if (slot.fetching === undefined) {
          await connections.take(1)
          if (slot.fetching === undefined) fetch(slot)
          else connections.give(1)
        }
        const body = await slot.fetching
        if (body !== undefined) return body
      }
    }

    let current: ObjectBody | undefined
    try {
      for (;;) {
        void refill()
        while (window.length === 0 && !inputDone) await refill()
        const slot = window.shift()
        if (slot === undefined) {
          if (inputFailure) throw inputFailure.error
          return
        }
        slot.head = true
        const next = window[0]
        if (next) next.head = true
        let item: EntryWithBody<E>
        try {
          item = slot.passThrough ?? { entry: slot.entry, body: await bodyOf(slot) }
        } catch (error) {
          if (skipMissing && error instanceof ObjectNotFoundError) continue
          throw error
        } finally {
          buffered -= slot.reserved
          slot.reserved = 0
        }
        if (ctx.signal?.aborted) {
          item.body.destroy()
          throw ctx.signal.reason
        }
        current = item.body
        // The next one may now be fetched ahead even if it does not fit (it may wait as a stream).
        void refill()
        yield item
        // The consumer moved on: what it did not read of this body is released.
        current.abandon()
        current = undefined
        // Only now may the input move past an item that brought its own body: the consumer is done with it.
        if (slot.passThrough) waitingOnPassThrough = false
      }
    } finally {
      closed = true
      current?.abandon()
      await pulling
      for (const slot of window) {
        slot.abort?.abort()
        slot.fetching?.then((body) => body?.destroy(), ignore)
        slot.passThrough?.body.destroy()
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
