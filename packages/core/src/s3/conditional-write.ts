/**
 * Sending a conditional write (PutObject, CompleteMultipartUpload) so that it means the same on
 * every server, for the writers in `multipart-upload.ts`:
 *
 * - `If-Match` goes in the form the server honours (see `server-knowledge.ts`). A 412 to a form not
 *   yet confirmed is checked with a HEAD: if the object still has the ETag that was sent, the
 *   condition held and the server refused the form (Ceph RGW 16 refuses the quoted one), so the
 *   write is sent once more in the other form, and the form that is accepted is remembered for the
 *   client. If the object changed or is gone, the 412 is what it says: a lost race. If both forms
 *   are refused over an unchanged object, the server does not do conditional PutObject:
 *   `ConditionalWriteUnsupportedError` (capability `conditionalPut`).
 * - 409 `ConditionalRequestConflict` (AWS S3: another conditional write to the key was under way)
 *   on a PutObject is sent again, up to {@link CONFLICT_RETRIES} times with a short jittered pause,
 *   as AWS documents. On a completion it is thrown: AWS says the upload must be restarted, which
 *   only the caller can do (a root append does: it starts over).
 * - A conditional multipart write is only started where the server is known to honour conditions
 *   on CompleteMultipartUpload (`refuseUnguardedCompletion`): elsewhere a stale completion would
 *   overwrite a concurrent writer's object unnoticed (Ceph RGW 16, fauxqs), so it is refused with
 *   `ConditionalWriteUnsupportedError` (capability `conditionalComplete`) before anything is sent.
 *
 * Errors from the server are thrown as the SDK gave them, for the caller to map.
 *
 * @example
 * ```ts
 * import { sendConditional } from '@s3exchange/core/internals'
 *
 * const response = await sendConditional(ctx, key, { ifMatch: etagRead }, 'PutObject', (conditions) =>
 *   ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: body, ...conditions })),
 * )
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { ConditionalWriteUnsupportedError, httpStatusOf, ObjectNotFoundError } from '../format/errors.js'
import { emitEvent } from '../format/events.js'
import type { S3Context } from './context.js'
import { headObject, unquoteEtag } from './requests.js'
import { type IfMatchForm, learnIfMatchForm, serverKnowledge } from './server-knowledge.js'

/** The conditions of a write: `ifMatch` (an ETag, quoted or not), `ifNoneMatch` (`'*'`). */
export interface WriteConditions {
  /** Only write if the object's current ETag is this one (quoted or bare: sent in the form the server honours). */
  ifMatch?: string | undefined
  /** `'*'`: only write if no object exists under the key. */
  ifNoneMatch?: string | undefined
}

/** The condition headers of one request, as the SDK's commands name them. */
export interface ConditionHeaders {
  IfMatch?: string | undefined
  IfNoneMatch?: string | undefined
}

/** Times a PutObject answered 409 `ConditionalRequestConflict` is sent again. */
export const CONFLICT_RETRIES = 3

/** Whether a write has a condition. */
export function isConditional(conditions: WriteConditions): boolean {
  return conditions.ifMatch !== undefined || conditions.ifNoneMatch !== undefined
}

/** Sends a conditional write with `send`, given its headers; see the module comment. */
export async function sendConditional<T>(
  ctx: S3Context,
  key: string,
  conditions: WriteConditions,
  operation: 'PutObject' | 'CompleteMultipartUpload',
  send: (headers: ConditionHeaders) => Promise<T>,
): Promise<T> {
  const etag = conditions.ifMatch === undefined ? undefined : unquoteEtag(conditions.ifMatch)
  if (etag === undefined) return sendThroughConflicts(ctx, key, operation, () => send({ IfNoneMatch: conditions.ifNoneMatch }))
  const knowledge = serverKnowledge(ctx.client)
  let form = knowledge.ifMatchForm
  let confirmed = knowledge.ifMatchConfirmed
  for (let forms = 1; ; forms++) {
    try {
      const response = await sendThroughConflicts(ctx, key, operation, () =>
        send({ IfMatch: ifMatchHeader(etag, form), IfNoneMatch: conditions.ifNoneMatch }),
      )
      if (learnIfMatchForm(ctx.client, form)) emitEvent(ctx, { type: 'capability-learned', capability: 'ifMatchForm', value: form, key })
      return response
    } catch (error) {
      if (httpStatusOf(error) !== 412 || confirmed || ctx.signal?.aborted) throw error
      // Did the condition hold? If the object is still the version named, the server refused the form.
      if ((await currentEtag(ctx, key, error)) !== etag) throw error
      if (forms === 2) {
        throw new ConditionalWriteUnsupportedError(
          `the server refused If-Match in both ETag forms ("${etag}" and ${etag}) although the object's ETag is the one sent: ` +
            'it does not do conditional PutObject (capability conditionalPut). Nothing was written.',
          { key, capability: 'conditionalPut', known: true, cause: error },
        )
      }
      form = otherForm(form)
      emitEvent(ctx, {
        type: 'fallback',
        key,
        fallback: 'if-match-form',
        reason: `the server answered 412 to If-Match in the ${otherForm(form)} form although the object's ETag is the one sent: trying the ${form} form`,
      })
      // A form already confirmed by another write meanwhile is not tried again.
      confirmed = serverKnowledge(ctx.client).ifMatchConfirmed && serverKnowledge(ctx.client).ifMatchForm === form
    }
  }
}

/**
 * Throws `ConditionalWriteUnsupportedError` when a multipart upload to `key` with these
 * conditions would not keep them: the server ignores conditions on CompleteMultipartUpload, or is
 * not known to honour them. Called before the upload is created: nothing has been sent.
 */
export function refuseUnguardedCompletion(ctx: S3Context, key: string, conditions: WriteConditions): void {
  if (!isConditional(conditions)) return
  const knowledge = serverKnowledge(ctx.client)
  if (knowledge.conditionalComplete === true) return
  const known = knowledge.conditionalComplete === false
  const why = known
    ? `this server ignores If-Match and If-None-Match on CompleteMultipartUpload (conditionalComplete: false, ${
        knowledge.conditionalCompleteMeasured ? 'measured by probeServer' : 'as stated with rememberServerCapabilities'
      })`
    : 'the library does not know whether this server honours If-Match and If-None-Match on CompleteMultipartUpload ' +
      '(capability conditionalComplete: run probeServerOnce(ctx) or s3x doctor to measure it, or state it with ' +
      'rememberServerCapabilities(client, { conditionalComplete: true }) where it does, as AWS S3 does)'
  throw new ConditionalWriteUnsupportedError(
    `a conditional write larger than one part needs a multipart upload, and ${why}; a completion whose condition is ignored ` +
      'could overwrite a concurrent writer’s object unnoticed. Nothing was written. Raise partSize to the object’s size to ' +
      'send it in one conditional PutObject.',
    { key, capability: 'conditionalComplete', known },
  )
}

/** Sends, and sends a PutObject again after 409 `ConditionalRequestConflict`; see the module comment. */
async function sendThroughConflicts<T>(ctx: S3Context, key: string, operation: string, send: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await send()
    } catch (error) {
      if (operation !== 'PutObject' || httpStatusOf(error) !== 409 || retry >= CONFLICT_RETRIES) throw error
      emitEvent(ctx, { type: 'write-retried', key, attempt: retry + 1, reason: 'conflict', status: 409 })
      await sleep(Math.random() * 50 * 2 ** retry, undefined, { signal: ctx.signal })
    }
  }
}

/**
 * The object's ETag now, unquoted; undefined when it is gone. When the HEAD fails otherwise,
 * `refusal` (the 412 that led here) is thrown: it stands.
 */
async function currentEtag(ctx: S3Context, key: string, refusal: unknown): Promise<string | undefined> {
  try {
    return unquoteEtag((await headObject(ctx, key)).ETag)
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined
    throw refusal
  }
}

function ifMatchHeader(etag: string, form: IfMatchForm): string {
  return form === 'quoted' ? `"${etag}"` : etag
}

function otherForm(form: IfMatchForm): IfMatchForm {
  return form === 'quoted' ? 'bare' : 'quoted'
}
