/**
 * A custom ETL stage, composed from the core operators with `pipe`: read one dataset (loose files
 * and shards, refs and all), transform each item, re-shard the results, publish them as a new
 * dataset with one atomic manifest commit. Everything streams: no object is held longer than its
 * own stage needs it, whatever the dataset's size.
 *
 * Runs against an embedded local S3 (fauxqs, in this process) by default, or against the server
 * named by S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and
 * S3_BUCKET) when that is set.
 *
 *   node examples/custom-etl.ts    (after npx pnpm@10 build)
 */
import { createHash } from 'node:crypto'
import { startLocalS3 } from '@s3exchange/testing'
import { pipe } from 'it-pipe'
import {
  type EntryWithBody,
  expandRefs,
  expandShards,
  fetchBodies,
  type ManifestEntry,
  readManifest,
  S3ExchangeStore,
  type ShardItem,
  shardInto,
  writeManifestParts,
} from 's3exchange'

const s3 = await startLocalS3()
try {
  const bucket = await s3.createBucket(s3.external ? undefined : 'custom-etl')
  const store = new S3ExchangeStore({ client: s3.client, bucket })
  const ctx = store.context()
  const run = Date.now().toString(36)
  const source = `etl-${run}/raw/manifest.jsonl`
  const target = `etl-${run}/clean/manifest.jsonl`

  // --- A dataset to start from: some loose "recordings" and a shard of them, as another service
  //     would have published it.
  const loose = []
  for (let i = 0; i < 6; i++) {
    loose.push(
      await store.putObject(`etl-${run}/raw/rec-${i}.txt`, Buffer.from(`  Recording ${i}: HELLO world  `), { meta: { lang: 'en' } }),
    )
  }
  const shard = await store.putShardArchive(
    `etl-${run}/raw/shards/shard-00000.tar.gz`,
    Array.from({ length: 10 }, (_, i) => ({
      source: Buffer.from(`  Recording ${100 + i}: GOOD morning  `),
      member_path: `rec-${100 + i}.txt`,
      id: `rec-${100 + i}`,
      meta: { lang: 'en' },
    })),
  )
  await store.writeManifest(source, [...loose, shard.entry])
  console.log(`source dataset: ${source} (${loose.length} loose files and 1 shard of 10)`)

  // --- The pipeline: read → resolve refs → expand shards → fetch loose bodies → transform →
  //     re-shard → publish (parts first, then one conditional commit of the root).
  const transform = async function* (items: AsyncIterable<EntryWithBody>): AsyncGenerator<ShardItem> {
    for await (const { entry, body } of items) {
      const text = (await body.text()).trim().toLowerCase()
      const id = String((entry as { id?: string }).id ?? entry.key)
      yield {
        source: Buffer.from(text),
        member_path: `${id}.txt`,
        id,
        meta: { ...((entry as { meta?: object }).meta ?? {}), sha256: createHash('sha256').update(text).digest('hex').slice(0, 16) },
      }
    }
  }
  const result = await pipe(
    readManifest(ctx, source),
    expandRefs(ctx),
    expandShards(ctx, { bodies: true }),
    fetchBodies(ctx, { concurrency: 8 }),
    transform,
    shardInto(ctx, { prefix: `etl-${run}/clean/shards`, maxEntries: 5, compression: 'gzip' }),
    writeManifestParts(ctx, target),
  )
  console.log(`published ${target}: ${result.entries} shards in ${result.parts.length} part(s)`)

  // --- What a consumer of the new dataset sees.
  let objects = 0
  for await (const { entry, body } of store.iterObjects(target)) {
    objects++
    if (objects <= 3) console.log(`   ${entry.key}: ${JSON.stringify(await body.text())}`)
  }
  const shards: ManifestEntry[] = []
  for await (const entry of store.iterManifestEntries(target)) shards.push(entry)
  console.log(`clean dataset: ${objects} objects in ${shards.length} shards, each at most 5 members`)
  await store.deletePrefix(`etl-${run}/`)
} finally {
  await s3.stop()
}
