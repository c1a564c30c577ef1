/**
 * What an S3 server guarantees, as `probeServer` measures it, and what this library does on a
 * server with those guarantees. S3-compatible servers differ where it matters for a data library:
 * whether conditional writes are enforced and in which ETag form, whether conditions hold on a
 * multipart completion, whether a completion answers an ETag, how large a single PUT may be.
 * `ServerCapabilities` says it in a form the library picks its strategy from;
 * {@link libraryBehaviour} says it in words, for people (it is what `s3x doctor` prints).
 *
 * @example
 * ```ts
 * import { libraryBehaviour, type ServerCapabilities } from '@s3exchange/core'
 *
 * const ceph: ServerCapabilities = { putIfNoneMatch: 'honoured', conditionalPut: 'bare', conditionalComplete: false, … }
 * for (const { topic, verdict, text } of libraryBehaviour(ceph)) console.log(`${topic}: ${verdict}: ${text}`)
 * // append_parts: limited: safe under concurrent writers for roots up to 64 MiB …
 * ```
 */
import { DEFAULT_PART_SIZE } from './multipart-upload.js'

/**
 * How a server treats a condition (`If-Match`, `If-None-Match`) on a write:
 * - `honoured`: a condition that does not hold is refused with 412, one that holds is written;
 * - `ignored`: a condition that does not hold is written anyway (the object is replaced);
 * - `refused`: the request fails even when the condition holds (e.g. 501 Not Implemented).
 */
export type ConditionOutcome = 'honoured' | 'ignored' | 'refused'

/**
 * The forms of the ETag in `If-Match` that a server honours on PutObject: `quoted` (`"3858f6…"`, as
 * RFC 7232 and AWS write it), `bare` (`3858f6…`, Ceph RGW 16), `both`, or `none` (If-Match is not
 * enforced in either form).
 */
export type ConditionalPutForm = 'quoted' | 'bare' | 'both' | 'none'

/** What a server does, measured by `probeServer`; each field is one check. */
export interface ServerCapabilities {
  /** PutObject with `If-None-Match: *` over an existing key. */
  putIfNoneMatch: ConditionOutcome
  /** The ETag forms in which PutObject honours `If-Match` (refused with 412 when stale, written when current). */
  conditionalPut: ConditionalPutForm
  /** PutObject with `If-Match` on a key that does not exist: the HTTP status it is refused with (404 on AWS, 412 on Ceph RGW), or `'written'`. */
  putIfMatchMissing: number | 'written'
  /** CompleteMultipartUpload with `If-None-Match: *` over an existing key. */
  completeIfNoneMatch: ConditionOutcome
  /** CompleteMultipartUpload with `If-Match` (in a form PutObject honours; quoted when none) and a stale ETag. */
  completeIfMatch: ConditionOutcome
  /** Both conditions are honoured on CompleteMultipartUpload: a conditional multipart commit keeps its guarantee. */
  conditionalComplete: boolean
  /** The CompleteMultipartUpload answer carries the new object's ETag (Ceph RGW 16 answers an empty one). */
  completeEtag: boolean
  /**
   * The smallest part, among those tried, that the server takes when it is not the last part of
   * an upload: 1 (no minimum enforced), 5 MiB (S3's documented minimum), or (when it refused
   * 5 MiB parts too): null.
   */
  minPartSize: number | null
  /** The largest single PutObject the server took, up to the probe's bound (`maxSinglePutBound`). */
  maxSinglePut: number
  /** The smallest single PutObject it refused, or null when it took the bound. */
  maxSinglePutRefused: number | null
  /** GetObject with `Range` (`a-b`, `a-`, `-n`) answers 206 with exactly those bytes and their `Content-Range`. */
  rangedGet: boolean
  /** HTTP status of a GetObject whose range starts past the end (416 on AWS). */
  rangePastEnd: number
  /** GetObject with a quoted `If-Match` answers 200 when it holds and 412 when not (resumed reads rely on it). */
  getIfMatch: boolean
  /** DeleteObjects deletes the keys it is given. */
  deleteObjects: boolean
  /** The most keys DeleteObjects takes: 1000 when it refuses 1,001; null when it took 1,001. */
  deleteObjectsMaxKeys: number | null
  /** ListObjectsV2 pages with continuation tokens. */
  listPaging: boolean
  /** The `MaxKeys` a ListObjectsV2 for 10,000 keys is answered with, when lower (the server's cap); else null. */
  listMaxKeys: number | null
}

/** What {@link libraryBehaviour} speaks about, in the order it does. */
export const BEHAVIOUR_TOPICS = ['append_parts', 'multipart writes', 'single PUTs', 'reads', 'deletes', 'listing'] as const

/** One thing the library does on a server, for people: `topic`, a verdict, and a sentence. */
export interface LibraryBehaviour {
  /** What it is about (`append_parts` covers every root commit: `putSharded` and the `ManifestWriter` too). */
  topic: (typeof BEHAVIOUR_TOPICS)[number]
  /** `ok`: works as documented; `limited`: works within a stated limit or at a stated cost; `unsafe`: a guarantee does not hold, or it fails. */
  verdict: 'ok' | 'limited' | 'unsafe'
  /** What the library does and why, in one or two sentences. */
  text: string
}

/** The most keys the library deletes in one DeleteObjects request (S3's documented limit). */
const DELETE_BATCH = 1000

/** `8388608` → `8 MiB`; `1` → `1 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let unit = 0
  let value = bytes
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`
}

/**
 * The largest single PUT the library counts on with this server, in words: what the probe found,
 * or, when it took the largest it tried, the server's own limit, which the library learns from the
 * first refusal (it tries single PUTs up to DEFAULT_SINGLE_PUT_LIMIT).
 */
function singlePutLimit(capabilities: ServerCapabilities): string {
  const size = formatSize(capabilities.maxSinglePut)
  return capabilities.maxSinglePutRefused === null
    ? `the largest single PUT this server takes (at least ${size}, the most the probe tried)`
    : size
}

/** The form of If-Match the library sends on this server. */
function etagForm(form: ConditionalPutForm): string {
  if (form === 'bare') return 'the bare ETag, the only form this server honours'
  if (form === 'quoted') return 'the quoted ETag, as AWS'
  return 'the quoted ETag (this server honours both forms)'
}

/**
 * What the library does on a server with these capabilities, one statement per topic: conditional
 * root commits (`append_parts`, `putSharded(…, { updateMode: 'append_parts' })`, the
 * `ManifestWriter`), multipart writes, single PUTs, reads, deletes, listing.
 *
 * Root commits: a root is committed with one conditional PutObject whenever its size allows (up to
 * the largest single PUT the server takes); beyond that, with a conditional multipart completion,
 * which on a server that ignores conditions on completion is refused with a typed error
 * (`ConditionalWriteUnsupportedError`) rather than risk overwriting a concurrent append.
 */
export function libraryBehaviour(capabilities: ServerCapabilities): LibraryBehaviour[] {
  return [
    rootCommits(capabilities),
    multipartWrites(capabilities),
    singlePuts(capabilities),
    reads(capabilities),
    deletes(capabilities),
    listing(capabilities),
  ]
}

function rootCommits(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'append_parts'
  const updates = capabilities.conditionalPut !== 'none'
  const creates = capabilities.putIfNoneMatch === 'honoured'
  const limit = singlePutLimit(capabilities)
  const refusal = capabilities.conditionalComplete
    ? ''
    : ` A root larger than ${limit} would need a conditional multipart completion, which this server ignores: such an append is refused with a typed error, never written unguarded.`
  if (!updates) {
    return {
      topic,
      verdict: 'unsafe',
      text:
        'unsafe under concurrent writers: this server does not enforce If-Match on PutObject, so concurrent appends to one ' +
        `root can lose each other’s parts (the last writer wins, as with the Python library). One writer per root is safe.${refusal}`,
    }
  }
  const how = `roots are committed with one conditional PutObject (If-Match with ${etagForm(capabilities.conditionalPut)}${
    creates ? '; If-None-Match: * to create one' : ''
  })`
  const creation = creates
    ? ''
    : ' This server ignores If-None-Match: * on PutObject: two writers creating the same root at the same moment can lose one’s parts.'
  if (capabilities.conditionalComplete) {
    return {
      topic,
      verdict: creates ? 'ok' : 'limited',
      text: `safe under concurrent writers: ${how} up to ${limit}, larger ones with a conditional multipart completion, which this server honours.${creation}`,
    }
  }
  return {
    topic,
    verdict: 'limited',
    text:
      `safe under concurrent writers for roots up to ${limit}: ${how}. This server ignores conditions on multipart completion, ` +
      `so an append that would make a root larger than that is refused with a typed error, never written unguarded.${creation}`,
  }
}

function multipartWrites(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'multipart writes'
  const part = formatSize(DEFAULT_PART_SIZE)
  if (capabilities.minPartSize === null) {
    return {
      topic,
      verdict: 'unsafe',
      text: 'this server refused a 5 MiB part that was not the last: objects larger than one part cannot be written until partSize is raised to what it takes.',
    }
  }
  const minimum =
    capabilities.minPartSize <= 1
      ? 'this server enforces no minimum part size'
      : `this server refuses parts under ${formatSize(capabilities.minPartSize)} but the last; the library's are never smaller`
  const base = `objects and shards larger than ${part} go up as multipart uploads of ${part} parts (${minimum})`
  if (capabilities.completeEtag) return { topic, verdict: 'ok', text: `${base}.` }
  return {
    topic,
    verdict: 'limited',
    text: `${base}. The completion answers no ETag, so the library reads it with a HEAD after each multipart write (one more request).`,
  }
}

function singlePuts(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'single PUTs'
  if (capabilities.maxSinglePutRefused !== null && capabilities.maxSinglePut < DEFAULT_PART_SIZE) {
    return {
      topic,
      verdict: 'unsafe',
      text: `this server refuses single PUTs of ${formatSize(capabilities.maxSinglePutRefused)}, and the library sends objects up to ${formatSize(
        DEFAULT_PART_SIZE,
      )} in one PUT: set partSize to ${formatSize(capabilities.maxSinglePut)} or less.`,
    }
  }
  return {
    topic,
    verdict: 'ok',
    text: `objects up to ${formatSize(DEFAULT_PART_SIZE)} go up in one PutObject; this server takes single PUTs ${
      capabilities.maxSinglePutRefused === null
        ? `of ${formatSize(capabilities.maxSinglePut)} (the most the probe tried)`
        : `up to ${formatSize(capabilities.maxSinglePut)} (${formatSize(capabilities.maxSinglePutRefused)} refused)`
    }.`,
  }
}

function reads(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'reads'
  if (!capabilities.rangedGet) {
    return {
      topic,
      verdict: 'unsafe',
      text: 'ranged GETs do not work here: reading one shard member by virtual key, and resuming a read cut mid-body, fail.',
    }
  }
  if (!capabilities.getIfMatch) {
    return {
      topic,
      verdict: 'limited',
      text: 'one shard member is read with one ranged GET; a read cut mid-body resumes with Range, but this server ignores If-Match on GET, so a resumed read cannot tell that the object was replaced meanwhile.',
    }
  }
  return {
    topic,
    verdict: 'ok',
    text: 'one shard member is read with one ranged GET; a read cut mid-body resumes where it stopped (Range and If-Match: an object replaced meanwhile is an error, never spliced).',
  }
}

function deletes(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'deletes'
  if (!capabilities.deleteObjects) {
    return { topic, verdict: 'unsafe', text: 'DeleteObjects does not work here: deletePrefix and deleteManifest fail.' }
  }
  const max = capabilities.deleteObjectsMaxKeys
  if (max !== null && max < DELETE_BATCH) {
    return {
      topic,
      verdict: 'limited',
      text: `DeleteObjects takes at most ${max} keys here: pass batchSize: ${max} (the default is ${DELETE_BATCH}).`,
    }
  }
  return {
    topic,
    verdict: 'ok',
    text: `deletePrefix and deleteManifest delete in DeleteObjects batches of up to ${DELETE_BATCH.toLocaleString('en-US')} keys.`,
  }
}

function listing(capabilities: ServerCapabilities): LibraryBehaviour {
  const topic = 'listing'
  if (!capabilities.listPaging) {
    return {
      topic,
      verdict: 'unsafe',
      text: 'ListObjectsV2 continuation tokens do not work here: listKeys and deletePrefix may stop at the first page.',
    }
  }
  const cap =
    capabilities.listMaxKeys === null
      ? ''
      : ` (this server answers at most ${capabilities.listMaxKeys.toLocaleString('en-US')} keys a page)`
  return { topic, verdict: 'ok', text: `listKeys and deletePrefix page through ListObjectsV2 with continuation tokens${cap}.` }
}
