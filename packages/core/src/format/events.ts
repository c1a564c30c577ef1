/**
 * Events: what the library did on its own to get a call through, for logs and metrics. A context
 * (`S3Context.onEvent`, the store's `onEvent` option) may carry a hook that is called with each:
 *
 * - `read-resumed`: a body read that broke was resumed with a ranged GET (`offset`: the first byte
 *   asked for again; `attempt`: 1 for the first resume of that read);
 * - `write-retried`: a write sent again: a root update that lost a race to another writer
 *   (`reason: 'lost-race'`: a 412, a 409, the root deleted or replaced meanwhile), a PutObject
 *   answered 409 `ConditionalRequestConflict` (`'conflict'`), or a server that asked to slow down
 *   (`'slow-down'`);
 * - `capability-learned`: something learned of the server and kept for the client (see
 *   `server-knowledge.ts`): the form of `If-Match` it honours, the size of a single PUT it refused,
 *   or what a probe measured;
 * - `fallback`: another way taken than the first choice: the other `If-Match` form after a 412 over
 *   an unchanged object, a multipart upload after a single PUT refused as too large, a HEAD for an
 *   ETag the server did not answer, a key with `#` read as an ordinary key, an archive streamed
 *   because its index did not locate a member.
 *
 * Events are observability only: a hook that throws is ignored (the error is dropped, the I/O goes
 * on), and nothing waits for it. A hook is called synchronously: keep it cheap. `logEvents` makes
 * a hook from a console- or pino-like logger.
 *
 * @example
 * ```ts
 * import { S3ExchangeStore, logEvents } from 's3exchange'
 *
 * const store = new S3ExchangeStore({ client, bucket: 'my-bucket', onEvent: logEvents(console) })
 * // or: onEvent: (event) => { if (event.type === 'read-resumed') metrics.increment('s3.resumes') }
 * ```
 */

/** A body read that broke, resumed where it stopped. */
export interface ReadResumedEvent {
  type: 'read-resumed'
  /** The object read. */
  key: string
  /** The first byte asked for again (of the object). */
  offset: number
  /** 1 for the first resume of this read, 2 for the second, … */
  attempt: number
  /** Why the read broke (the error's message). */
  reason: string
}

/** A write sent again. */
export interface WriteRetriedEvent {
  type: 'write-retried'
  /** The object written (a root manifest, for a lost race). */
  key: string
  /** The attempt that failed: 1 for the first. */
  attempt: number
  /** A lost race (412, 409, the root deleted or replaced), a 409 `ConditionalRequestConflict`, or a request to slow down. */
  reason: 'lost-race' | 'conflict' | 'slow-down'
  /** The HTTP status of the refusal, when there was one. */
  status?: number | undefined
}

/** Something learned of the server, kept for the client. */
export interface CapabilityLearnedEvent {
  type: 'capability-learned'
  /**
   * `ifMatchForm`: the form of `If-Match` the server accepted (`'quoted'` or `'bare'`);
   * `maxSinglePutRefused`: the size in bytes of a single PUT it refused as too large;
   * `conditionalComplete`: whether it honours conditions on CompleteMultipartUpload (a probe).
   */
  capability: 'ifMatchForm' | 'maxSinglePutRefused' | 'conditionalComplete'
  value: string | number | boolean
  /** The key of the write it was learned from, when it was. */
  key?: string | undefined
}

/** Another way taken than the first choice. */
export interface FallbackEvent {
  type: 'fallback'
  key: string
  /**
   * `if-match-form`: the other `If-Match` form, after a 412 over an unchanged object;
   * `multipart-upload`: a multipart upload, after a single PUT refused as too large;
   * `etag-by-head`: a HEAD, for the ETag a write's answer did not carry;
   * `ordinary-key`: a key with `#` that names no archive member, read as an ordinary key;
   * `streamed-member`: an archive streamed up to a member its index did not locate.
   */
  fallback: 'if-match-form' | 'multipart-upload' | 'etag-by-head' | 'ordinary-key' | 'streamed-member'
  /** Why, in words. */
  reason: string
}

/** Every event; discriminated by `type`. */
export type S3ExchangeEvent = ReadResumedEvent | WriteRetriedEvent | CapabilityLearnedEvent | FallbackEvent

/** An event hook: called synchronously with each event; a throw is ignored. */
export type OnEvent = (event: S3ExchangeEvent) => void

/** The `onEvent` option (of a context, a store). */
export interface EventOptions {
  /** Called with each `S3ExchangeEvent` (see `format/events.ts`); a hook that throws is ignored. */
  onEvent?: OnEvent | undefined
}

/** Calls the hook of `options` with `event`, ignoring what it throws: events never break I/O. */
export function emitEvent(options: EventOptions | undefined, event: S3ExchangeEvent): void {
  const hook = options?.onEvent
  if (hook === undefined) return
  try {
    hook(event)
  } catch {
    // Observability only: a failing hook must not fail the read or write it reports on.
  }
}

/** What `logEvents` writes to: `console`, a pino or winston logger, … (missing levels are skipped). */
export interface EventLogger {
  debug?: (message: string, ...rest: unknown[]) => unknown
  info?: (message: string, ...rest: unknown[]) => unknown
  warn?: (message: string, ...rest: unknown[]) => unknown
}

/** The level an event is logged at: `warn` for broken reads and slow-downs, `debug` for ETags read by HEAD, else `info`. */
export function eventLevel(event: S3ExchangeEvent): 'debug' | 'info' | 'warn' {
  if (event.type === 'read-resumed' || (event.type === 'write-retried' && event.reason === 'slow-down')) return 'warn'
  if (event.type === 'fallback' && event.fallback === 'etag-by-head') return 'debug'
  return 'info'
}

/** One line saying what happened, e.g. `s3exchange: read of ds/a.tar resumed at byte 1048576 (attempt 1): aborted`. */
export function describeEvent(event: S3ExchangeEvent): string {
  switch (event.type) {
    case 'read-resumed':
      return `s3exchange: read of ${event.key} resumed at byte ${event.offset} (attempt ${event.attempt}): ${event.reason}`
    case 'write-retried':
      return `s3exchange: write of ${event.key} retried after attempt ${event.attempt} (${event.reason}${event.status ? `, HTTP ${event.status}` : ''})`
    case 'capability-learned':
      return `s3exchange: server capability ${event.capability} = ${String(event.value)}${event.key ? ` (learned writing ${event.key})` : ''}`
    case 'fallback':
      return `s3exchange: ${event.key}: fallback to ${event.fallback}: ${event.reason}`
  }
}

/**
 * An event hook that logs each event to `logger` at its level (`eventLevel`), as one line
 * (`describeEvent`) followed by the event object (pino and console both print it).
 */
export function logEvents(logger: EventLogger): OnEvent {
  return (event) => {
    const level = eventLevel(event)
    const log = logger[level]
    if (typeof log === 'function') log.call(logger, describeEvent(event), event)
  }
}
