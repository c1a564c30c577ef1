/**
 * How `probeServer` reads the answers to its requests: the {@link Answer} to one request, whether a
 * condition was honoured, the HTTP statuses in words, and the constants its checks share.
 */
import { unquoteEtag } from './requests.js'
import type { ConditionalPutForm, ConditionOutcome } from './server-capabilities.js'

export const MiB = 1024 * 1024
/** S3's documented smallest part but the last. */
export const S3_MIN_PART_SIZE = 5 * MiB
/** An ETag no object has. */
export const STALE_ETAG = '0123456789abcdef0123456789abcdef'

/** The answer to one request: its HTTP status (undefined when none came) and what it returned or threw. */
export type Answer<T> =
  | { ok: true; status: number; value: T }
  | { ok: false; status: number | undefined; code: string | undefined; error: unknown }

/** A write's outcome under a condition that did not hold: refused with 412 (honoured), written (ignored), or another error. */
export function outcome(answer: Answer<unknown>): ConditionOutcome {
  if (answer.ok) return 'ignored'
  return answer.status === 412 ? 'honoured' : 'refused'
}

export function isRefusal(answer: Answer<unknown>): boolean {
  return !answer.ok && answer.status === 412
}

/** The If-Match value in the form the server honours (quoted unless only bare works). */
export function ifMatchValue(form: ConditionalPutForm, etag: string): string {
  return form === 'bare' ? etag : `"${etag}"`
}

export function status(answer: Answer<unknown>): string {
  if (answer.ok) return String(answer.status)
  if (answer.status === undefined) return `no answer: ${(answer.error as Error)?.message ?? answer.error}`
  // The error code, where it says more than the status (412 is always PreconditionFailed).
  const code = answer.code && answer.code !== 'Unknown' && answer.code !== 'Error' && answer.status !== 412 ? ` ${answer.code}` : ''
  return `${answer.status}${code}`
}

export function statuses(...answers: Answer<unknown>[]): string {
  return answers.map(status).join(', ')
}

/** Whole MiBs in `bytes`, in bytes. */
export function mebibytes(bytes: number): number {
  return Math.floor(bytes / MiB) * MiB
}

export function unquote(etag: string | undefined): string {
  return unquoteEtag(etag) ?? ''
}
