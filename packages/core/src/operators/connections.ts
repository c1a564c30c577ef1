/**
 * The connection budget: how many connections of the client's pool one call holds at most. It is
 * set by the call's own options, never by how deep refs go, how many archives there are, or what
 * the caller skips: each part of a read that holds connections is a term, and a call's budget is
 * the sum of the terms of the stages it runs.
 *
 * | term | connections | why no more |
 * | --- | --- | --- |
 * | `manifests` (`readManifest` + `expandRefs`) | 1 | a manifest lets go of its connection while the manifests its refs name are read (`ObjectChunks`) |
 * | `objects` (`fetchBodies`, `fetchKeys`) | `concurrency` | requests in flight, the next body's stream and the body being read, together; an object fetched ahead that does not fit in `maxBufferedBytes` is closed and fetched again in its turn |
 * | `archives` (`expandShards` with bodies) | `shardConcurrency` | the archive consumed and those read ahead; one read ahead whose next member does not fit in the budget lets go of its archive |
 * | `deletes` (`deleteAll`, `deletePlanned`) | `concurrency` (default 4) | DeleteObjects batches in flight |
 * | `listing` (`listKeys`) | 1 | one page at a time |
 * | `ranges` (parallel ranged reads, with `ctx.ranges`) | `rangeConcurrency` | the ranged GETs beyond each object's own, taken from the call's slots only when free, whatever number of large objects the call reads (`s3/range-slots.ts`) |
 *
 * A body handed to the caller and not read to the end is released when the caller asks for the
 * next item, so skipping bodies never holds connections. Size the client's pool (`maxSockets` of
 * its HTTP agent; the AWS SDK's default is 50) to at least the budget of each call running at once
 * on it. Below that, a call still finishes (nothing it holds waits on a connection another of its
 * own parts holds, as long as the pool has 2: the manifest and one body), only slower.
 *
 * A new part of a read that holds connections adds its term here, and the calls that run it add
 * that term to their budget (as parallel ranged reads add `rangeConcurrency`).
 *
 * @example
 * ```ts
 * import { Agent } from 'node:https'
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { readConnections } from '@s3exchange/core'
 *
 * const options = { concurrency: 32, shardConcurrency: 4, rangeConcurrency: 4 }
 * const perCall = readConnections(options).total                       // 1 + 32 + 4 + 4 = 41
 * const client = new S3Client({ requestHandler: { httpsAgent: new Agent({ keepAlive: true, maxSockets: perCall * 2 }) } })
 * ```
 */
import { DEFAULT_RANGE_CONCURRENCY } from '../s3/range-plan.js'
import { DEFAULT_SHARD_CONCURRENCY } from './expand-shards.js'
import { DEFAULT_FETCH_CONCURRENCY } from './fetch-bodies.js'

/** The terms of a read's budget, and their sum. */
export interface ConnectionBudget {
  /** The manifest being read (with its refs). */
  manifests: number
  /** Loose objects and members fetched by key (`concurrency`). */
  objects: number
  /** Archives streamed (`shardConcurrency`, when shards are expanded with their bodies). */
  archives: number
  /** Ranged GETs of large objects beyond each object's own (`rangeConcurrency`). */
  ranges: number
  /** The most connections the read holds at once. */
  total: number
}

/** The options that set a read's budget (as `iterObjects` takes them). */
export interface ReadConnectionOptions {
  /** Objects fetched at once. Default `DEFAULT_FETCH_CONCURRENCY` (32), as `iterObjects`. */
  concurrency?: number
  /** Archives read at once. Default `DEFAULT_SHARD_CONCURRENCY` (2), as `iterObjects` (the bare `expandShards` operator reads 1). */
  shardConcurrency?: number
  /** Whether shards are streamed with their bodies. Default true. */
  expandShards?: boolean
  /** Whether a manifest is read (false for `fetchKeys` / `iterObjectsFromKeys`). Default true. */
  manifest?: boolean
  /** Ranged GETs at once beside each object's own (see `RangedReadOptions`). Default 4, the store's; 0 for a context without `ranges`. */
  rangeConcurrency?: number
}

/**
 * The budget of a read: `manifest` (1) + `concurrency` + `shardConcurrency` + `rangeConcurrency`
 * (see the module comment). `iterObjects` is all four; `iterObjectsFromKeys` and `downloadObjects`
 * `concurrency` + `rangeConcurrency`; `iterManifestEntries` and `listManifestFiles` 1 (+ `rangeConcurrency`
 * for a manifest larger than two ranges).
 */
export function readConnections(options: ReadConnectionOptions = {}): ConnectionBudget {
  const manifests = (options.manifest ?? true) ? 1 : 0
  const objects = options.concurrency ?? DEFAULT_FETCH_CONCURRENCY
  const archives = (options.expandShards ?? true) ? (options.shardConcurrency ?? DEFAULT_SHARD_CONCURRENCY) : 0
  const ranges = options.rangeConcurrency ?? DEFAULT_RANGE_CONCURRENCY
  return { manifests, objects, archives, ranges, total: manifests + objects + archives + ranges }
}
