/**
 * Assertion helpers for tests of code that fails on purpose.
 *
 * @example
 * ```ts
 * import { rejection } from '@s3exchange/testing'
 *
 * const error = await rejection(store.getObject('missing.bin'))
 * expect(error).toBeInstanceOf(ObjectNotFoundError)
 * expect((error as ObjectNotFoundError).key).toBe('missing.bin')
 * ```
 */

/**
 * The error `promise` rejects with, to inspect its class and fields one by one (where
 * `expect(…).rejects` would stop at the first). Throws when the promise resolves instead.
 */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the promise to reject')
}
