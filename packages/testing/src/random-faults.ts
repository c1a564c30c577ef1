/**
 * Faults at a rate for the S3 test proxy: `randomFaults` builds an `intercept` that answers a share
 * of requests with errors, cuts or drops a share of responses and delays some, deterministically
 * for a seed (`mulberry32`).
 *
 * @example
 * ```ts
 * import { randomFaults, startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const faults = randomFaults({ seed: 7, rate: 0.05, resetRate: 0.05, maxInARow: 3 })
 * const proxy = await startS3Proxy({ target: s3.endpoint, intercept: faults })
 * ```
 */
import { checkResetAfterBytes } from './proxy-http.js'
import type { ProxiedRequest, ProxyAction } from './proxy-types.js'

/** Options for {@link randomFaults}. */
export interface RandomFaultsOptions {
  /**
   * Seed of the pseudo-random sequence (mulberry32). The same seed gives the same decisions, in
   * the order the proxy sees requests: a run that sends its requests one at a time is replayed
   * exactly; with concurrent requests the same decisions fall on requests in arrival order.
   */
  seed: number
  /** Share of requests answered with an error status instead of being forwarded, from 0 to 1. Default 0.05. */
  rate?: number
  /**
   * Statuses to answer with, one picked at random each time: 503 is sent with the S3 code
   * `SlowDown`, 500 with `InternalError`, others with `InjectedError`. Default `[503, 500]`.
   */
  statuses?: readonly number[]
  /**
   * Share of forwarded requests (of those `resetOnly` accepts) whose response is cut mid-body,
   * from 0 to 1. Default 0.
   */
  resetRate?: number
  /**
   * Where a cut falls: after this many body bytes, or `'random'` (default): at a point drawn
   * uniformly within the body (its `Content-Length`; a body without one is cut right after the
   * headers). An empty body is never cut.
   */
  resetAfterBytes?: number | 'random'
  /**
   * Which forwarded requests may be cut. Default: GETs. A cut response to a write leaves the
   * client not knowing whether the write happened (the server did it): test that on purpose,
   * not at a rate.
   */
  resetOnly?: (request: ProxiedRequest) => boolean
  /**
   * Share of forwarded requests (of those `dropOnly` accepts) carried out by the server but whose
   * response is withheld, the connection closed (`dropResponse`), from 0 to 1: the client cannot
   * tell whether its write happened. `resetRate + dropRate` is at most 1. Default 0.
   */
  dropRate?: number
  /**
   * Which forwarded requests may have their response dropped. Default: all but
   * CreateMultipartUpload (whose lost answer leaves an upload that no client can know of, let
   * alone abort: a bucket lifecycle rule's job, not a client's).
   */
  dropOnly?: (request: ProxiedRequest) => boolean
  /** Share of forwarded requests held back first, from 0 to 1. Default 0. */
  delayRate?: number
  /** Longest hold, in milliseconds; each one is drawn uniformly up to it. Default 50. */
  maxDelayMs?: number
  /** Which requests may get any fault. Default: all. */
  only?: (request: ProxiedRequest) => boolean
  /**
   * At most this many faults (error answers, cuts, drops) in a row on one method and path; the next
   * request for it goes through clean. Use it to stay within what a client is documented to
   * absorb (e.g. 3 resumptions of one read). Default: no limit.
   */
  maxInARow?: number
}

/** What {@link randomFaults} has injected so far. */
export interface InjectedFaults {
  /** Requests it decided on (those `only` accepts). */
  requests: number
  /** Requests answered with an error status. */
  errors: number
  /** Error answers by HTTP status. */
  byStatus: Record<number, number>
  /** Responses forwarded with a cut planned (a cut point past the end of its body sends it whole; `proxy.resets` counts real cuts). */
  resets: number
  /** Requests forwarded with their response to be dropped (`proxy.drops` counts those done). */
  drops: number
  /** Requests held back. */
  delays: number
  /** Faults not injected because of `maxInARow`. */
  spared: number
}

/** An `intercept` for {@link startS3Proxy} that injects faults at a rate; see {@link randomFaults}. */
export interface RandomFaults {
  (request: ProxiedRequest): ProxyAction | undefined
  /** Counts of what was injected. */
  readonly injected: InjectedFaults
}

/**
 * An `intercept` that injects faults at a rate, deterministically for a seed: error answers (503
 * `SlowDown`, 500 `InternalError`), connection resets at a random point of the response body,
 * responses dropped after the server carried the request out, and delays. Its `injected`
 * property counts what it did.
 *
 * @example
 * ```ts
 * import { randomFaults, retryQuickly, startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const faults = randomFaults({ seed: 42, rate: 0.05, resetRate: 0.05, maxInARow: 3 })
 * const proxy = await startS3Proxy({ target: s3.endpoint, intercept: faults })
 * // A client that retries 503s and 500s often enough and without long pauses.
 * const client = s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * // ... run the code under test with `client` ...
 * console.log(faults.injected) // { requests, errors, byStatus: { 500: …, 503: … }, resets, drops, delays, spared }
 * ```
 */
export function randomFaults(options: RandomFaultsOptions): RandomFaults {
  const rate = checkRate('rate', options.rate ?? 0.05)
  const resetRate = checkRate('resetRate', options.resetRate ?? 0)
  const delayRate = checkRate('delayRate', options.delayRate ?? 0)
  const dropRate = checkRate('dropRate', options.dropRate ?? 0)
  checkRate('resetRate + dropRate', resetRate + dropRate)
  const statuses = options.statuses ?? [503, 500]
  if (statuses.length === 0 && rate > 0) throw new TypeError('statuses must not be empty')
  const maxDelayMs = options.maxDelayMs ?? 50
  const cut = options.resetAfterBytes ?? 'random'
  if (cut !== 'random') checkResetAfterBytes(cut)
  const resetOnly = options.resetOnly ?? ((request: ProxiedRequest) => request.method === 'GET')
  const dropOnly = options.dropOnly ?? ((request: ProxiedRequest) => !(request.method === 'POST' && /[?&]uploads(=|&|$)/.test(request.url)))
  const maxInARow = options.maxInARow ?? Number.POSITIVE_INFINITY
  const random = mulberry32(options.seed)
  const streaks = new Map<string, number>()
  const injected: InjectedFaults = { requests: 0, errors: 0, byStatus: {}, resets: 0, drops: 0, delays: 0, spared: 0 }

  const decide = (request: ProxiedRequest): ProxyAction | undefined => {
    if (options.only && !options.only(request)) return undefined
    injected.requests++
    // Always six draws per request, so that each request's decision depends only on its place in the sequence.
    const [errorDraw, statusDraw, resetDraw, cutDraw, delayDraw, delayAmount] = Array.from({ length: 6 }, random) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ]
    const wantsError = errorDraw < rate
    const wantsReset = !wantsError && resetDraw < resetRate && resetOnly(request)
    // Drops take the draws just above the resets' share, so that adding them leaves the other decisions of a seed as they were.
    const wantsDrop = !wantsError && !wantsReset && resetDraw >= resetRate && resetDraw < resetRate + dropRate && dropOnly(request)
    const wantsFault = wantsError || wantsReset || wantsDrop
    if (maxInARow !== Number.POSITIVE_INFINITY) {
      const streakKey = `${request.method} ${new URL(request.url, 'http://x').pathname}`
      const streak = streaks.get(streakKey) ?? 0
      if (wantsFault && streak >= maxInARow) {
        injected.spared++
        streaks.delete(streakKey)
        return undefined
      }
      if (wantsFault) streaks.set(streakKey, streak + 1)
      else streaks.delete(streakKey)
    }
    const delayMs = delayDraw < delayRate ? Math.floor(delayAmount * maxDelayMs) : 0
    if (delayMs > 0) injected.delays++
    if (wantsError) {
      const status = statuses[Math.floor(statusDraw * statuses.length)] as number
      injected.errors++
      injected.byStatus[status] = (injected.byStatus[status] ?? 0) + 1
      return { status, code: status === 503 ? 'SlowDown' : status === 500 ? 'InternalError' : 'InjectedError', delayMs }
    }
    if (wantsReset) {
      injected.resets++
      return {
        delayMs,
        resetAfterBytes: cut === 'random' ? (length: number | undefined) => (length === undefined ? 0 : Math.floor(cutDraw * length)) : cut,
      }
    }
    if (wantsDrop) {
      injected.drops++
      return { delayMs, dropResponse: true }
    }
    return delayMs > 0 ? { delayMs } : undefined
  }
  return Object.assign(decide, { injected })
}

/**
 * A seeded pseudo-random sequence (mulberry32, a small, fast 32-bit PRNG): numbers in [0, 1), the
 * same ones for the same seed on every machine. For workloads that must repeat exactly.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function checkRate(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0 && value <= 1)) throw new TypeError(`${name} must be between 0 and 1, not ${value}`)
  return value
}
