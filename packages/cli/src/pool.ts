/**
 * A bound on work in flight: `add` waits while `limit` tasks run, then starts the next one;
 * `drain` waits for all of them. Tasks report their own failures (`verify` records problems);
 * a task that rejects anyway fails the next `add` or `drain`.
 *
 * @example
 * ```ts
 * import { TaskPool } from '@s3exchange/cli'
 *
 * const pool = new TaskPool(16)
 * for (const key of keys) await pool.add(() => check(key))
 * await pool.drain()
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
