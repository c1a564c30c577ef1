/**
 * `probeServer` against the test server: the known answers of the servers measured here (the
 * embedded fauxqs, Ceph RGW 16), and on any server claims that agree with each other and with a
 * second look; the enforcing proxy turns "ignored" into "honoured"; the scratch prefix is empty
 * afterwards, also after a failure or a cancellation; the cache per client; what a probe tells the
 * writes through its client; typed errors.
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import { MEASURED_CAPABILITIES, rejection, type S3Proxy, startS3Proxy } from '@s3exchange/testing'
import { testServer, useTestS3 } from '@s3exchange/testing/vitest'
import { afterEach, describe, expect, it } from 'vitest'
import { S3RequestError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { BEHAVIOUR_TOPICS } from './server-capabilities.js'
import { serverKnowledge } from './server-knowledge.js'
import { probeServer, probeServerOnce, type ServerProbe } from './server-probe.js'

const MiB = 1024 * 1024
const s3 = useTestS3()
const server = testServer()
const proxies: S3Proxy[] = []
const clients: S3Client[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()))
})

const ctx = (): S3Context => ({ client: s3.client, bucket: s3.bucket })

/** Probes with single PUTs tried up to 16 MiB, under this file's prefix. */
const probe = (context: S3Context = ctx(), bound = 16 * MiB) => probeServer(context, { prefix: `${s3.prefix}/`, maxSinglePutBound: bound })

/** Every object and open multipart upload under `prefix`. */
async function leftUnder(prefix: string): Promise<string[]> {
  const objects = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))
  const uploads = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }))
  return [
    ...(objects.Contents ?? []).map((object) => `object ${object.Key}`),
    ...(uploads.Uploads ?? []).map((upload) => `upload ${upload.Key}`),
  ]
}

/** What any server's probe must satisfy, whatever it found. */
function expectConsistent(result: ServerProbe, bound: number): void {
  const c = result.capabilities
  expect(c.conditionalComplete).toBe(c.completeIfNoneMatch === 'honoured' && c.completeIfMatch === 'honoured')
  expect(c.maxSinglePut).toBeLessThanOrEqual(bound)
  if (c.maxSinglePutRefused === null) expect(c.maxSinglePut).toBe(bound)
  else expect(c.maxSinglePutRefused - c.maxSinglePut).toBeLessThanOrEqual(MiB)
  expect(c.maxSinglePut % MiB).toBe(0)
  expect([1, 5 * MiB, null]).toContain(c.minPartSize)
  if (c.listMaxKeys !== null) expect(c.listMaxKeys).toBeLessThan(10_000)
  // One check per capability (the largest single PUT's reports both of its fields), each with a result; one statement per topic.
  expect(result.checks.map((check) => check.id).sort()).toEqual(
    Object.keys(c)
      .filter((key) => key !== 'maxSinglePutRefused')
      .sort(),
  )
  for (const check of result.checks) expect(check.result).not.toBe('')
  expect(result.behaviour.map((each) => each.topic)).toEqual([...BEHAVIOUR_TOPICS])
  expect(result.scratchPrefix).toMatch(new RegExp(`^${s3.prefix}/\\.s3x-probe-[0-9a-f]{12}/$`))
}

describe('probeServer', () => {
  it(`finds what the test server (${server.name}) guarantees, and leaves nothing behind`, async () => {
    const result = await probe()
    expectConsistent(result, 16 * MiB)
    // The known answers of the servers measured here (fauxqs, Ceph RGW 16); any other: the checks above.
    if (server.name !== 'unknown') expect(result.capabilities).toEqual(MEASURED_CAPABILITIES[server.name])
    // The global setup probed the same server: the same answers (a probe is deterministic).
    expect(result.capabilities).toEqual(server.capabilities)
    expect(result.bucket).toBe(s3.bucket)
    expect(await leftUnder(result.scratchPrefix)).toEqual([])
    // What writes through this client now pick their strategy from.
    expect(serverKnowledge(s3.client)).toMatchObject({
      conditionalComplete: result.capabilities.conditionalComplete,
      conditionalCompleteMeasured: true,
      singlePutRefused: result.capabilities.maxSinglePutRefused ?? undefined,
    })
  })

  it('in front of the enforcing proxy, conditions on PUT and on completion are honoured', async () => {
    const proxy = await startS3Proxy({ target: s3.s3, enforceConditionalWrites: true })
    proxies.push(proxy)
    const client = s3.s3.createClient({ endpoint: proxy.endpoint })
    clients.push(client)
    const { capabilities } = await probe({ client, bucket: s3.bucket })
    expect(capabilities).toMatchObject({
      putIfNoneMatch: 'honoured',
      completeIfNoneMatch: 'honoured',
      completeIfMatch: 'honoured',
      conditionalComplete: true,
      // the proxy takes either form; the server behind it may refuse one
      conditionalPut: server.capabilities.conditionalPut === 'none' ? 'both' : server.capabilities.conditionalPut,
      putIfMatchMissing: 412,
    })
    expect(proxy.conflicts).toBeGreaterThanOrEqual(4)
    expect(serverKnowledge(client)).toMatchObject({
      conditionalComplete: true,
      ifMatchForm: capabilities.conditionalPut === 'bare' ? 'bare' : 'quoted',
      ifMatchConfirmed: true,
    })
  })

  it('a cancelled probe rejects with the signal’s reason and still empties its scratch prefix', async () => {
    const controller = new AbortController()
    let requests = 0
    const proxy = await startS3Proxy({
      target: s3.s3,
      intercept: () => {
        // Cancel once the probe is among its multipart uploads (after the conditional PUTs).
        if (++requests === 14) controller.abort(new Error('cancelled by the test'))
        return undefined
      },
    })
    proxies.push(proxy)
    const client = s3.s3.createClient({ endpoint: proxy.endpoint })
    clients.push(client)
    const error = await rejection(probe({ client, bucket: s3.bucket, signal: controller.signal }))
    expect(error).toMatchObject({ message: 'cancelled by the test' })
    const prefixes = new Set(
      proxy.requests.map((request) => /\.s3x-probe-[0-9a-f]{12}\//.exec(decodeURIComponent(request.url))?.[0]).filter(Boolean),
    )
    expect(prefixes.size).toBe(1)
    expect(proxy.requests.some((request) => request.method === 'POST' && request.url.includes('uploadId='))).toBe(true)
    expect(await leftUnder(`${s3.prefix}/${[...prefixes][0]}`)).toEqual([])
  })

  it('a bucket that does not exist is an S3RequestError naming the key', async () => {
    const error = await rejection(probe({ client: s3.client, bucket: `no-such-bucket-${s3.prefix}` }))
    expect(error).toBeInstanceOf(S3RequestError)
    expect((error as S3RequestError).key).toMatch(/\.s3x-probe-[0-9a-f]{12}\/01-conditional-put$/)
  })

  it('refuses a bound under 1 MiB', async () => {
    await expect(probeServer(ctx(), { maxSinglePutBound: 1000 })).rejects.toThrow(
      /maxSinglePutBound must be an integer of at least 1 MiB, not 1000/,
    )
  })
})

describe('probeServerOnce', () => {
  it('probes once per client; a failed probe is tried again', async () => {
    const client = s3.s3.createClient()
    clients.push(client)
    const failed = probeServerOnce({ client, bucket: `no-such-bucket-${s3.prefix}` }, { prefix: `${s3.prefix}/` })
    await expect(failed).rejects.toBeInstanceOf(S3RequestError)
    const first = probeServerOnce({ client, bucket: s3.bucket }, { prefix: `${s3.prefix}/`, maxSinglePutBound: MiB })
    expect(first).not.toBe(failed)
    expect(probeServerOnce({ client, bucket: s3.bucket })).toBe(first)
    const other = s3.s3.createClient()
    clients.push(other)
    const second = probeServerOnce({ client: other, bucket: s3.bucket }, { prefix: `${s3.prefix}/`, maxSinglePutBound: MiB })
    expect(second).not.toBe(first)
    expect((await first).capabilities).toEqual((await second).capabilities)
    expect((await first).capabilities.maxSinglePut).toBe(MiB)
  })
})
