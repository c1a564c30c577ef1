/**
 * What the library knows of the S3 server behind a client, kept per `S3Client` for as long as the
 * client lives (a client talks to one server). Writes pick their strategy from it:
 *
 * - the **form of `If-Match`** to send: quoted (`"3858f6…"`, RFC 7232 and AWS) until the server
 *   shows it wants the bare ETag (Ceph RGW 16: a 412 although the object still has the ETag sent,
 *   then a write accepted with the other form); a form a write was accepted with is *confirmed*,
 *   and a 412 to it is then a lost race without looking further;
 * - whether the server **honours conditions on CompleteMultipartUpload** (`conditionalComplete`):
 *   unknown until `probeServer` measures it or the caller states it, and a conditional multipart
 *   write is refused unless it is known to be honoured;
 * - the **smallest single PUT the server refused** as too large (HTTP 413, or `EntityTooLarge`):
 *   larger ones are not tried again. Until a refusal, a single PUT is tried up to
 *   {@link DEFAULT_SINGLE_PUT_LIMIT}.
 *
 * It is learned from the server's answers, seeded by `probeServer` (every probe records what it
 * measured for its client), or stated with {@link rememberServerCapabilities}; nothing here sends
 * a request.
 *
 * @example
 * ```ts
 * import { rememberServerCapabilities } from '@s3exchange/core'
 *
 * // MinIO (RELEASE.2024-05-27 or later) honours conditions on multipart completions: say so once,
 * // and conditional writes larger than a part go up as multipart uploads instead of being refused.
 * rememberServerCapabilities(client, { conditionalComplete: true })
 * ```
 */
import type { S3Client } from '@aws-sdk/client-s3'

/** The ETag form of an `If-Match` header: `"3858f6…"` or `3858f6…`. */
export type IfMatchForm = 'quoted' | 'bare'

/**
 * The largest single PUT tried before the server refused one: 5 GiB − 5 MiB, the lowest of the
 * documented limits (Cloudflare R2's; AWS S3's is 5 GiB). A server that takes less says so with a
 * 413 or `EntityTooLarge`, once per client.
 */
export const DEFAULT_SINGLE_PUT_LIMIT = 5 * 1024 ** 3 - 5 * 1024 ** 2

/**
 * The fields of `ServerCapabilities` (what `probeServer` measures) that writes use; a whole
 * `ServerCapabilities` is one.
 */
export interface WriteCapabilities {
  /** The ETag forms in which PutObject honours `If-Match`: `quoted`, `bare`, `both` or `none`. */
  conditionalPut?: 'quoted' | 'bare' | 'both' | 'none'
  /** Both conditions are honoured on CompleteMultipartUpload. */
  conditionalComplete?: boolean
  /** The smallest single PutObject the server refused (null: none was). */
  maxSinglePutRefused?: number | null
}

/** What is known of one client's server. */
export interface ServerKnowledge {
  /** The form of `If-Match` to send first. */
  ifMatchForm: IfMatchForm
  /** True once the server accepted a conditional write with that form (or the probe measured it). */
  ifMatchConfirmed: boolean
  /** Conditions on CompleteMultipartUpload: honoured (true), ignored (false), or not known (undefined). */
  conditionalComplete: boolean | undefined
  /** Whether the value of `conditionalComplete` was measured by a probe (else stated by the caller). */
  conditionalCompleteMeasured: boolean
  /** The smallest single PUT refused as too large, in bytes; undefined when none was. */
  singlePutRefused: number | undefined
}

const known = new WeakMap<S3Client, ServerKnowledge>()

/** What is known of the server behind `client` (defaults when nothing is). */
export function serverKnowledge(client: S3Client): Readonly<ServerKnowledge> {
  return knowledgeOf(client)
}

function knowledgeOf(client: S3Client): ServerKnowledge {
  let knowledge = known.get(client)
  if (knowledge === undefined) {
    knowledge = {
      ifMatchForm: 'quoted',
      ifMatchConfirmed: false,
      conditionalComplete: undefined,
      conditionalCompleteMeasured: false,
      singlePutRefused: undefined,
    }
    known.set(client, knowledge)
  }
  return knowledge
}

/**
 * Tells the library what the server behind `client` does, as `probeServer` measures it (for
 * example from `s3x doctor --json`'s `capabilities`), without probing: the fields it uses are
 * `conditionalPut` (the `If-Match` form to send), `conditionalComplete` (whether a conditional write
 * may go up as a multipart upload) and `maxSinglePutRefused` (single PUTs that large or larger are
 * not tried). A whole `ServerCapabilities` may be given; its other fields are ignored. A later probe
 * or answer of the server refines what is known.
 */
export function rememberServerCapabilities(client: S3Client, capabilities: WriteCapabilities): void {
  recordCapabilities(client, capabilities, false)
}

/** What `probeServer` measured, recorded for its client. */
export function recordProbedCapabilities(client: S3Client, capabilities: WriteCapabilities): void {
  recordCapabilities(client, capabilities, true)
}

function recordCapabilities(client: S3Client, capabilities: WriteCapabilities, measured: boolean): void {
  const knowledge = knowledgeOf(client)
  const form = capabilities.conditionalPut
  if (form === 'bare' || form === 'quoted' || form === 'both') {
    knowledge.ifMatchForm = form === 'bare' ? 'bare' : 'quoted'
    knowledge.ifMatchConfirmed = true
  }
  if (capabilities.conditionalComplete !== undefined) {
    knowledge.conditionalComplete = capabilities.conditionalComplete
    knowledge.conditionalCompleteMeasured = measured
  }
  if (typeof capabilities.maxSinglePutRefused === 'number') learnSinglePutRefused(client, capabilities.maxSinglePutRefused)
}

/**
 * The server accepted a conditional write with `form`: send that form from now on. True when this
 * is news (the form was not already the confirmed one).
 */
export function learnIfMatchForm(client: S3Client, form: IfMatchForm): boolean {
  const knowledge = knowledgeOf(client)
  const news = !knowledge.ifMatchConfirmed || knowledge.ifMatchForm !== form
  knowledge.ifMatchForm = form
  knowledge.ifMatchConfirmed = true
  return news
}

/** The server refused a single PUT of `size` bytes as too large. True when this lowers what was known. */
export function learnSinglePutRefused(client: S3Client, size: number): boolean {
  const knowledge = knowledgeOf(client)
  const news = knowledge.singlePutRefused === undefined || size < knowledge.singlePutRefused
  knowledge.singlePutRefused = Math.min(knowledge.singlePutRefused ?? Number.POSITIVE_INFINITY, size)
  return news
}

/** Whether a single PUT of `size` bytes is worth trying on this client's server. */
export function singlePutFits(client: S3Client, size: number): boolean {
  const refused = knowledgeOf(client).singlePutRefused
  return size <= DEFAULT_SINGLE_PUT_LIMIT && (refused === undefined || size < refused)
}
