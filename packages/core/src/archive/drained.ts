/**
 * `drained(writable)`: the promise to await after `write()` returned false, so that a writer
 * respects backpressure without hanging on a stream destroyed meanwhile.
 *
 * @example
 * ```ts
 * if (!deflate.write(chunk)) await drained(deflate)
 * ```
 */

/** Resolves when `writable` emits `drain`, or `close` (when it was destroyed meanwhile). */
export function drained(writable: {
  once(event: string, listener: () => void): unknown
  removeListener(event: string, listener: () => void): unknown
}): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      writable.removeListener('drain', done)
      writable.removeListener('close', done)
      resolve()
    }
    writable.once('drain', done)
    writable.once('close', done)
  })
}
