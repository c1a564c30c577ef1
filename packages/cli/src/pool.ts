/**
 * Bounds on work in flight. `TaskPool`: `add` waits while `limit` tasks run, then starts the next
 * one; `drain` waits for all of them. Tasks report their own failures (`verify` records problems);
 * a task that rejects anyway fails the next `add` or `drain`. `mapAhead`: maps an iterable with up
 * to `limit` calls at once, yielding the results in input order (a rejection is thrown in its turn).
 *
 * @example
 * ```ts
 * import { mapAhead, TaskPool } from '@s3exchange/cli'
 *
 * const pool = new TaskPool(16)
 * for (const key of keys) await pool.add(() => check(key))
 * await pool.drain()
 *
 * for await (const head of mapAhead(keys, 16, (key) => headObject(ctx, key))) console.log(head.ContentLength)
 * ```
 */
export class TaskPool {
  readonly limit: number
  readonly #running = new Set<Promise<void>>()
  #failure: { error: unknown } | undefined

  constructor(limit: number) {
    this.limit = Math.max(1, limit)
  }

  /** Starts `task` once fewer than `limit` run. */
  async add(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.limit) await Promise.race(this.#running)
    this.#throwIfFailed()
    const running: Promise<void> = task()
      .catch((error: unknown) => {
        this.#failure ??= { error }
      })
      .finally(() => this.#running.delete(running))
    this.#running.add(running)
  }

  /** Waits for every task started. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running)
    this.#throwIfFailed()
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure.error
  }
}

/** Maps `items` with `fn`, up to `limit` calls in flight, in input order; see the module comment. */
export async function* mapAhead<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R, void, undefined> {
  const window: Promise<R>[] = []
  try {
    for await (const item of items) {
      const result = fn(item)
      // Awaited in its turn; until then a rejection must not count as unhandled.
      result.catch(() => {})
      window.push(result)
      if (window.length >= Math.max(1, limit)) yield await (window.shift() as Promise<R>)
    }
    while (window.length > 0) yield await (window.shift() as Promise<R>)
  } finally {
    window.length = 0
  }
}
