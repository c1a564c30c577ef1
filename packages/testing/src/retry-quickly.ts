/**
 * `retryQuickly`: S3 client settings that retry often and with short pauses, for clients that talk
 * through the proxy's injected faults.
 *
 * @example
 * ```ts
 * import { retryQuickly } from '@s3exchange/testing'
 *
 * const client = s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * ```
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3'

/** Options for {@link retryQuickly}. */
export interface RetryQuicklyOptions {
  /** Attempts per request, the first included. Default 10. */
  maxAttempts?: number
  /** Upper bound of the first pause, in milliseconds; it doubles at each retry (full jitter). Default 10. */
  baseDelayMs?: number
  /** Longest pause, in milliseconds. Default 500. */
  maxDelayMs?: number
}

/**
 * S3 client settings that retry what the SDK's standard strategy retries (throttling such as 503
 * `SlowDown`, and transient errors: 500, 502, 503, 504, connection resets) up to `maxAttempts`
 * times, with short pauses and no retry quota, for clients that talk through injected faults in
 * tests. (The SDK's default makes 3 attempts and pauses up to a second or more after a
 * throttling error.) Spread it into the client configuration.
 *
 * @example
 * ```ts
 * const client = s3.createClient({ endpoint: proxy.endpoint, ...retryQuickly({ maxAttempts: 8 }) })
 * ```
 */
export function retryQuickly(options: RetryQuicklyOptions = {}): Pick<S3ClientConfig, 'maxAttempts' | 'retryStrategy'> {
  const maxAttempts = options.maxAttempts ?? 10
  const baseDelayMs = options.baseDelayMs ?? 10
  const maxDelayMs = options.maxDelayMs ?? 500
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1))
    throw new TypeError(`maxAttempts must be a positive integer, not ${maxAttempts}`)
  const token = (count: number, delay: number) => ({ getRetryCount: () => count, getRetryDelay: () => delay })
  const retryStrategy = {
    mode: 'standard',
    acquireInitialRetryToken: async () => token(0, 0),
    refreshRetryTokenForRetry: async (previous: { getRetryCount(): number }, info: { errorType: string }) => {
      const count = previous.getRetryCount() + 1
      if (count >= maxAttempts || (info.errorType !== 'THROTTLING' && info.errorType !== 'TRANSIENT')) {
        throw new Error('No retry token available')
      }
      return token(count, Math.floor(Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (count - 1))))
    },
    recordSuccess: () => {},
  }
  return { maxAttempts, retryStrategy: retryStrategy as unknown as S3ClientConfig['retryStrategy'] }
}
