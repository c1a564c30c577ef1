/**
 * Small S3 helpers for tests and demos: loading a folder into a bucket, counting the requests a
 * client sends (through SDK middleware, so the code under test is untouched).
 *
 * @example
 * ```ts
 * import { countRequests, uploadDirectory } from '@s3exchange/testing'
 *
 * await uploadDirectory(client, bucket, 'test/fixtures/python-s3exchange-0.1.1/bucket')
 * const requests = countRequests(client)
 * // ... run the code under test ...
 * console.log(requests.GetObjectCommand ?? 0)
 * ```
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'

/** Uploads every file under `dir` to `bucket`, keyed by its path relative to `dir` (after `prefix/`). Returns the keys. */
export async function uploadDirectory(client: S3Client, bucket: string, dir: string, options: { prefix?: string } = {}): Promise<string[]> {
  const keys: string[] = []
  for (const path of await listFiles(dir)) {
    const relativeKey = relative(dir, path).split(sep).join('/')
    const key = options.prefix ? `${options.prefix.replace(/\/$/, '')}/${relativeKey}` : relativeKey
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path) }))
    keys.push(key)
  }
  return keys
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...(await listFiles(path)))
    else if (entry.isFile()) files.push(path)
  }
  return files.sort()
}

/** Counts of the commands a client sent, by command name (`GetObjectCommand`, ...), kept up to date. */
export type RequestCounts = Record<string, number>

/** Starts counting the commands `client` sends; returns the live counts. */
export function countRequests(client: S3Client): RequestCounts {
  const counts: RequestCounts = {}
  client.middlewareStack.add(
    (next, context) => (args) => {
      const name = context.commandName ?? 'unknown'
      counts[name] = (counts[name] ?? 0) + 1
      return next(args)
    },
    { step: 'initialize', name: `s3x-count-requests-${Math.random()}` },
  )
  return counts
}
