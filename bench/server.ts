/**
 * The S3 server for benchmarks, in a process of its own so that it does not share the event loop
 * with the client being measured: fauxqs on a free loopback port. Prints `{"endpoint": …}` on its
 * first line and stops when its stdin closes.
 *
 *   node bench/server.ts
 */
import { startFauxqs } from 'fauxqs'

const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false })
process.stdout.write(`${JSON.stringify({ endpoint: server.address })}\n`)
process.stdin.on('end', () => {
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
process.stdin.resume()
