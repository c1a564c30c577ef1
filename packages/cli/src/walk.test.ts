/** `walkManifest` counts manifests and depth, and holds the context's ref limits as the library does. */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { LimitExceededError, type S3Context } from 's3exchange'
import { describe, expect, it } from 'vitest'
import { walkManifest } from './walk.js'

const s3 = useTestS3()

async function put(key: string, lines: object[]): Promise<void> {
  const body = lines.map((line) => `${JSON.stringify(line)}\n`).join('')
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

describe('walkManifest', () => {
  it('counts manifests and the deepest ref; a chain deeper than maxRefDepth, or more manifests than maxManifests, is LimitExceededError', async () => {
    const keys = [0, 1, 2, 3].map((i) => s3.key(`walk/m${i}.jsonl`))
    for (const [i, key] of keys.entries()) {
      const next = keys[i + 1]
      await put(key, [{ kind: 'file', key: `f${i}` }, ...(next ? [{ kind: 'manifest_ref', key: next }] : [])])
    }
    const ctx = (limits?: S3Context['limits']): S3Context => ({ client: s3.client, bucket: s3.bucket, limits })
    const stats = { manifests: 0, maxDepth: 0 }
    const all = []
    for await (const walked of walkManifest(ctx(), keys[0] as string, stats)) all.push(walked.depth)
    expect(all).toEqual([0, 0, 1, 1, 2, 2, 3])
    expect(stats).toEqual({ manifests: 4, maxDepth: 3 })

    for (const [limits, limit] of [
      [{ maxRefDepth: 2 }, 'maxRefDepth'],
      [{ maxManifests: 3 }, 'maxManifests'],
    ] as const) {
      const error = await (async () => {
        for await (const _ of walkManifest(ctx(limits), keys[0] as string, { manifests: 0, maxDepth: 0 })) {
        }
      })().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(LimitExceededError)
      expect(error).toMatchObject({ key: keys[2], limit })
    }
  })
})
