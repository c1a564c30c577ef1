/**
 * The limits readers enforce on what they are given, so that a hostile or broken manifest or
 * archive ends in a typed error instead of unbounded memory, time or recursion. Each can be set
 * per call (in the operator's options) or for every call of a context or store (`S3Context.limits`,
 * the store's `limits` option); the call's value wins.
 *
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { expandRefs, readManifest } from '@s3exchange/core'
 *
 * const ctx = { client: new S3Client({}), bucket: 'exchange', limits: { maxRefDepth: 8, maxManifests: 1000 } }
 * for await (const entry of expandRefs(ctx)(readManifest(ctx, 'team/ds/manifest.jsonl'))) console.log(entry.key)
 * ```
 */

import { DEFAULT_MAX_LINE_BYTES, type SplitLinesOptions } from './jsonl.js'

/** Limits on what readers accept. */
export interface ReadLimits extends Pick<SplitLinesOptions, 'maxLineBytes'> {
  /** Deepest chain of `manifest_ref`s followed (a ref in a ref in …). Default 64; past it, `LimitExceededError`. */
  maxRefDepth?: number
  /** Most manifests read while resolving one manifest's refs. Default 100,000; past it, `LimitExceededError`. */
  maxManifests?: number
  /**
   * Largest internal manifest accepted, in bytes (its entries are held in memory while the archive
   * is read). Default 512 MiB; past it, `LimitExceededError`.
   */
  maxInternalManifestBytes?: number
  /** Largest archive member accepted, as its tar header declares it, in bytes. Default 1 TiB; past it, `LimitExceededError`. */
  maxMemberBytes?: number
}

/** The default limits. */
export const DEFAULT_LIMITS: Readonly<Required<ReadLimits>> = Object.freeze({
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
  maxRefDepth: 64,
  maxManifests: 100_000,
  maxInternalManifestBytes: 512 * 1024 * 1024,
  maxMemberBytes: 2 ** 40,
})

/** The limits in force: the call's options, then the context's, then the defaults. */
export function effectiveLimits(contextLimits: ReadLimits | undefined, options: ReadLimits = {}): Required<ReadLimits> {
  const pick = <K extends keyof ReadLimits>(name: K): number => options[name] ?? contextLimits?.[name] ?? DEFAULT_LIMITS[name]
  return {
    maxLineBytes: pick('maxLineBytes'),
    maxRefDepth: pick('maxRefDepth'),
    maxManifests: pick('maxManifests'),
    maxInternalManifestBytes: pick('maxInternalManifestBytes'),
    maxMemberBytes: pick('maxMemberBytes'),
  }
}
