/**
 * The store's `limits` option reaches every read it makes (manifests, refs, shards), and
 * `store.limits` shows what is in force.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { buildTar, internalManifestFor } from '@s3exchange/testing'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, LimitExceededError } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()

async function put(key: string, body: string | Uint8Array): Promise<void> {
  await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
}

describe('S3ExchangeStore limits', () => {
  it('defaults, or what was given on top of them', () => {
    expect(new S3ExchangeStore({ client: s3.client, bucket: s3.bucket }).limits).toEqual(DEFAULT_LIMITS)
    expect(new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, limits: { maxRefDepth: 3 } }).limits).toEqual({
      ...DEFAULT_LIMITS,
      maxRefDepth: 3,
    })
  })

  it('apply to iterManifestEntries (refs) and iterObjects (members)', async () => {
    const root = s3.key('store-limits/root.jsonl')
    const child = s3.key('store-limits/child.jsonl')
    const archive = s3.key('store-limits/shard.tar')
    const members = [{ name: 'a.bin', data: 'x'.repeat(100) }]
    await put(archive, await buildTar([{ name: '__manifest__.jsonl', data: internalManifestFor(archive, members) }, ...members]))
    await put(child, `${JSON.stringify({ kind: 'shard', archive_key: archive, format: 'tar', compression: null })}\n`)
    await put(root, `${JSON.stringify({ kind: 'manifest_ref', key: child })}\n`)

    const open = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket })
    expect((await Array.fromAsync(open.iterObjects(root))).map(({ entry }) => entry.key)).toEqual([`${archive}#a.bin`])

    const shallow = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, limits: { maxRefDepth: 0 } })
    const refused = await Array.fromAsync(shallow.iterManifestEntries(root)).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(LimitExceededError)
    expect(refused).toMatchObject({ key: root, limit: 'maxRefDepth', value: 0 })

    const small = new S3ExchangeStore({ client: s3.client, bucket: s3.bucket, limits: { maxMemberBytes: 99 } })
    const tooBig = await Array.fromAsync(small.iterObjects(root)).catch((error: unknown) => error)
    expect(tooBig).toMatchObject({ name: 'LimitExceededError', key: archive, limit: 'maxMemberBytes', value: 99 })
  })
})
