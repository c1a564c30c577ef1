/**
 * A consumer that follows a producer, like a Kafka consumer with its offset: the producer appends
 * parts to one root (`append_parts`); the consumer, with `store.follow`, gets every entry already
 * there, then each new one as it is published, without listing the bucket or reading again the
 * parts it has seen. It keeps the cursor of the last entry it handled: a restarted consumer
 * passes it as `after` and goes on from there.
 *
 * Runs against an embedded local S3 (fauxqs) by default, or against the server named by
 * S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION, S3_BUCKET).
 *
 *   node examples/follow-manifest.ts        (after npx pnpm@10 build)
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLocalS3 } from '@s3exchange/testing'
import { type FileEntry, S3ExchangeStore } from 's3exchange'

const s3 = await startLocalS3()
try {
  const bucket = await s3.createBucket(s3.external ? undefined : 'follow-manifest')
  const store = new S3ExchangeStore({ client: s3.client, bucket })
  const root = `events/${randomBytes(4).toString('hex')}/manifest.jsonl`
  const PARTS = 5
  const PER_PART = 3
  const file = (p: number, i: number): FileEntry => ({ kind: 'file', key: `${root.slice(0, -15)}/p${p}/e${i}.json`, size_bytes: 1 })
  await store.writeManifest(root, [file(0, 0), file(0, 1), file(0, 2)], { mode: 'append_parts' })

  // The producer: a part every 200 ms.
  const producing = (async () => {
    for (let p = 1; p < PARTS; p++) {
      await sleep(200)
      await store.writeManifest(
        root,
        Array.from({ length: PER_PART }, (_, i) => file(p, i)),
        { mode: 'append_parts' },
      )
      console.log(`producer: published part ${p}`)
    }
  })()

  // The consumer: everything already there, then what is appended; it stops once it has seen it all.
  const stop = new AbortController()
  let cursor: string | undefined
  let seen = 0
  for await (const item of store.follow(root, { pollIntervalMs: 50, signal: stop.signal })) {
    console.log(`consumer: ${item.entry.kind} ${(item.entry as FileEntry).key}`)
    cursor = item.cursor // save it somewhere durable to resume after a restart
    if (++seen === PARTS * PER_PART) stop.abort()
  }
  await producing

  // A restarted consumer resumes after its cursor: nothing new yet, then the next part.
  const again = new AbortController()
  const resumed: string[] = []
  const following = (async () => {
    for await (const { entry } of store.follow(root, { after: cursor, pollIntervalMs: 50, signal: again.signal })) {
      resumed.push((entry as FileEntry).key)
      again.abort()
    }
  })()
  await store.writeManifest(root, [file(PARTS, 0)], { mode: 'append_parts' })
  await following
  console.log(`resumed after its cursor: ${resumed.join(', ')}`)
  console.log(`Done: followed ${seen} entries as they were published, then resumed after a cursor.`)
} finally {
  await s3.stop()
}
