/**
 * `probeServer`: measures what an S3 server guarantees, by trying it, under a scratch prefix of
 * its own that it always empties (objects deleted, multipart uploads aborted), also when a check
 * fails or the signal fires. It checks conditional PutObject (`If-None-Match: *`, `If-Match` with
 * the quoted and the bare ETag, `If-Match` on a missing key), conditional CompleteMultipartUpload
 * (`If-None-Match` and `If-Match`), the ETag in the completion's answer, the minimum part size, the
 * largest single PUT up to a bound, ranged GETs (and 416 past the end), `If-Match` on GET,
 * DeleteObjects (and its limit of keys), and ListObjectsV2 paging.
 *
 * It resolves to the {@link ServerCapabilities} (what the library picks its strategy from), each
 * check's question and answer with the HTTP statuses seen, and {@link libraryBehaviour}: what the
 * library does on that server, in words. `probeServerOnce` probes once per `S3Client` and keeps
 * the answer for as long as the client lives. Every probe also tells the library's writes through
 * that client what it found (the `If-Match` form, conditions on multipart completions, the single-PUT
 * limit; see `rememberServerCapabilities`).
 *
 * It sends about 70 requests and uploads at most about twice `maxSinglePutBound` (64 MiB by default) plus
 * 5 MiB; lower the bound to probe a remote server quickly.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { probeServer } from '@s3exchange/core'
 *
 * const probe = await probeServer({ client: new S3Client({}), bucket: 'my-bucket' }, { prefix: 'tmp/' })
 * console.log(probe.capabilities.conditionalPut)          // 'both' on AWS S3, 'bare' on Ceph RGW 16
 * for (const { topic, verdict, text } of probe.behaviour) console.log(`${topic} [${verdict}] ${text}`)
 * ```
 */
import { randomBytes } from 'node:crypto'
import type { S3Client } from '@aws-sdk/client-s3'
import { emitEvent } from '../format/events.js'
import type { S3Context } from './context.js'
import { MiB } from './probe-answers.js'
import { Probe } from './probe-checks.js'
import type { ProbeCheck } from './probe-session.js'
import { type LibraryBehaviour, libraryBehaviour, type ServerCapabilities } from './server-capabilities.js'
import { recordProbedCapabilities } from './server-knowledge.js'

/** Options for {@link probeServer}. */
export interface ProbeServerOptions {
  /**
   * Where to write: the scratch prefix is `<prefix>.s3x-probe-<random>/`, so give a prefix you
   * may write under, ending in `/` for a folder. Default: the bucket's root.
   */
  prefix?: string
  /** The largest single PutObject tried, in bytes (the probe uploads about twice that). Default 64 MiB. */
  maxSinglePutBound?: number
}

/** What {@link probeServer} found. */
export interface ServerProbe {
  /** The bucket probed. */
  bucket: string
  /** The scratch prefix used (empty again when the probe returns). */
  scratchPrefix: string
  /** The server's capabilities. */
  capabilities: ServerCapabilities
  /** Each check, in the order run. */
  checks: ProbeCheck[]
  /** What the library does on this server (see `libraryBehaviour`). */
  behaviour: LibraryBehaviour[]
}

const DEFAULT_MAX_SINGLE_PUT_BOUND = 64 * MiB

/** Probes the server behind `ctx.client` in `ctx.bucket`; see the module comment. */
export async function probeServer(ctx: S3Context, options: ProbeServerOptions = {}): Promise<ServerProbe> {
  const bound = options.maxSinglePutBound ?? DEFAULT_MAX_SINGLE_PUT_BOUND
  if (!(Number.isSafeInteger(bound) && bound >= MiB))
    throw new TypeError(`maxSinglePutBound must be an integer of at least 1 MiB, not ${bound}`)
  const scratchPrefix = `${options.prefix ?? ''}.s3x-probe-${randomBytes(6).toString('hex')}/`
  const probe = new Probe(ctx, scratchPrefix)
  let capabilities: ServerCapabilities
  try {
    capabilities = await probe.run(bound)
  } catch (error) {
    // The failure is what to report; the clean-up does what it can.
    await probe.cleanUp().catch(() => {})
    throw error
  }
  await probe.cleanUp()
  // What writes through this client pick their strategy from (the If-Match form, conditional multipart).
  recordProbedCapabilities(ctx.client, capabilities)
  emitEvent(ctx, { type: 'capability-learned', capability: 'conditionalComplete', value: capabilities.conditionalComplete })
  if (capabilities.conditionalPut === 'bare' || capabilities.conditionalPut === 'quoted' || capabilities.conditionalPut === 'both') {
    emitEvent(ctx, {
      type: 'capability-learned',
      capability: 'ifMatchForm',
      value: capabilities.conditionalPut === 'bare' ? 'bare' : 'quoted',
    })
  }
  if (typeof capabilities.maxSinglePutRefused === 'number') {
    emitEvent(ctx, { type: 'capability-learned', capability: 'maxSinglePutRefused', value: capabilities.maxSinglePutRefused })
  }
  return { bucket: ctx.bucket, scratchPrefix, capabilities, checks: probe.checks, behaviour: libraryBehaviour(capabilities) }
}

const probes = new WeakMap<S3Client, Promise<ServerProbe>>()

/**
 * {@link probeServer}, once per client: the first call probes, later calls with the same
 * `ctx.client` get the same answer (whatever their bucket: a client talks to one server). A probe
 * that failed is not kept: the next call probes again.
 */
export function probeServerOnce(ctx: S3Context, options: ProbeServerOptions = {}): Promise<ServerProbe> {
  let probe = probes.get(ctx.client)
  if (probe === undefined) {
    probe = probeServer(ctx, options)
    probes.set(ctx.client, probe)
    probe.catch(() => {
      if (probes.get(ctx.client) === probe) probes.delete(ctx.client)
    })
  }
  return probe
}
