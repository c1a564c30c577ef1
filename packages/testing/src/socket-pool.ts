/**
 * A client whose connection pool you choose and can watch: `pooledClient(s3, { maxSockets })`
 * builds an S3 client on its own keep-alive HTTP(S) agent (the AWS SDK's `NodeHttpHandler`, given
 * the agent), and counts the agent's sockets: those in use by a request or a body being read,
 * those idle in the pool, requests waiting for one, and the most in use at once. For tests of how
 * many connections a call holds, and that it gives them all back.
 *
 * @example
 * ```ts
 * import { pooledClient, startLocalS3 } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const pool = pooledClient(s3, { maxSockets: 8 })
 * // … read through pool.client …
 * await pool.settled()          // sockets being closed are closed
 * console.log(pool.inUse(), pool.maxInUse())
 * pool.destroy()
 * ```
 */
import { once } from 'node:events'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import type { Socket } from 'node:net'
import { setImmediate as tick } from 'node:timers/promises'
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import type { LocalS3 } from './local-s3.js'

/** Options for {@link pooledClient}. */
export interface PooledClientOptions {
  /** Most sockets the agent opens to the server at once. */
  maxSockets: number
  /** More configuration for the client. */
  clientConfig?: S3ClientConfig
}

/** A client on a watched pool; see the module comment. */
export interface PooledClient {
  client: S3Client
  agent: HttpAgent
  /** Sockets assigned to a request (its body may still be streaming), not counting those being closed. */
  inUse(): number
  /** Sockets idle in the pool, kept alive for the next request. */
  idle(): number
  /** Requests waiting for a socket. */
  waiting(): number
  /** The most sockets in use at once, seen each time a response arrived (reset with `resetMax`). */
  maxInUse(): number
  resetMax(): void
  /** Resolves once every socket being closed is closed (so that the counts are current). */
  settled(): Promise<void>
  /** Destroys the client and the agent. */
  destroy(): void
}

/** Builds a client on its own pool of `maxSockets`; see the module comment. */
export function pooledClient(s3: Pick<LocalS3, 'createClient' | 'endpoint'>, options: PooledClientOptions): PooledClient {
  const https = s3.endpoint.startsWith('https:')
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: options.maxSockets })
    : new HttpAgent({ keepAlive: true, maxSockets: options.maxSockets })
  const client = s3.createClient({
    ...options.clientConfig,
    requestHandler: https ? { httpsAgent: agent } : { httpAgent: agent },
  })
  const count = (table: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(table).reduce((sum, list) => sum + (list?.length ?? 0), 0)
  // A socket destroyed (a body let go of before its end) stays in the agent's table until its
  // 'close' event, a tick or two later: it carries nothing any more, so it is not counted as in use.
  const inUse = () => (Object.values(agent.sockets).flat() as Socket[]).filter((socket) => !socket.destroyed).length
  let max = 0
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args)
      } finally {
        max = Math.max(max, inUse())
      }
    },
    { step: 'deserialize', name: `s3x-pooled-client-${Math.random()}` },
  )
  return {
    client,
    agent,
    inUse,
    idle: () => count(agent.freeSockets),
    waiting: () => count(agent.requests),
    maxInUse: () => max,
    resetMax: () => {
      max = 0
    },
    async settled() {
      // A destroyed socket leaves the agent's tables on its 'close' event, a tick or two later.
      for (let round = 0; round < 3; round++) {
        const sockets = [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].flat() as Socket[]
        await Promise.all(sockets.filter((socket) => socket.destroyed && !socket.closed).map((socket) => once(socket, 'close')))
        await tick()
      }
    },
    destroy() {
      client.destroy()
      agent.destroy()
    },
  }
}
