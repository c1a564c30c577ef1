/**
 * A TypeScript service reads what a Python service published.
 *
 * Loads the bucket that Python s3exchange 0.1.1 wrote (test/fixtures/python-s3exchange-0.1.1) into
 * an S3 server, then reads every root manifest through `S3ExchangeStore`: the entries, the files
 * (shard members included) and every object's bytes, loose or streamed out of tar / tar.gz shards.
 *
 * Runs against an embedded local S3 (fauxqs, in this process) by default, or against the server
 * named by S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and
 * S3_BUCKET) when that is set.
 *
 *   node examples/read-python-dataset.ts    (after npx pnpm@10 build)
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { startLocalS3, uploadDirectory } from '@s3exchange/testing'
import { S3ExchangeStore } from 's3exchange'

const fixture = join(import.meta.dirname, '../test/fixtures/python-s3exchange-0.1.1/bucket')
const roots = [
  'exchange/shared/loose/manifest.jsonl',
  'exchange/shared/parts/manifest.jsonl',
  'exchange/shared/shards/manifest.jsonl',
  'exchange/shared/writer/manifest.jsonl',
  'exchange/shared/mixed/manifest.jsonl',
  'exchange/shared/mixed/compact.jsonl',
]

const s3 = await startLocalS3()
try {
  const bucket = await s3.createBucket(s3.external ? undefined : 'python-published')
  console.log(`S3: ${s3.external ? 'external server' : 'embedded local S3'} at ${s3.endpoint}, bucket ${bucket}`)

  // The Python service's side, already done: its objects, shards and manifests land in the bucket.
  const keys = await uploadDirectory(s3.client, bucket, fixture)
  console.log(`loaded ${keys.length} objects that Python s3exchange 0.1.1 wrote\n`)

  // The TypeScript service's side: one store, your own S3 client.
  const store = new S3ExchangeStore({ client: s3.client, bucket })

  for (const root of roots) {
    console.log(`== ${root}`)
    let raw = 0
    for await (const entry of store.iterManifestEntries(root, { resolveRefs: false })) {
      raw++
      const what = entry.kind === 'shard' ? `${entry.archive_key} (${entry.count} members, ${entry.compression ?? 'plain tar'})` : entry.key
      console.log(`   ${entry.kind.padEnd(12)} ${what}`)
    }
    let resolved = 0
    for await (const _ of store.iterManifestEntries(root)) resolved++
    let files = 0
    for await (const _ of store.listManifestFiles(root)) files++
    console.log(`   ${raw} entries as written, ${resolved} with refs resolved, ${files} files with shards expanded`)

    let bytes = 0
    for await (const { entry, body } of store.iterObjects(root, { concurrency: 8 })) {
      const data = await body.bytes()
      bytes += data.byteLength
      const sha = createHash('sha256').update(data).digest('hex').slice(0, 12)
      const from = entry.archive_key === undefined ? 'object' : 'member'
      console.log(`   ${from} ${entry.key}  ${data.byteLength} B  sha256 ${sha}…`)
    }
    console.log(`   read ${bytes} bytes\n`)
  }

  // One member by its virtual key, without the rest of the shard's members.
  const member = 'exchange/shared/shards/shard-00002.tar.gz#nested/dir/ünï code.txt'
  console.log(`getObject('${member}') → ${JSON.stringify(await (await store.getObject(member)).text())}`)
  console.log('\nA TypeScript service read everything a Python service published.')
} finally {
  await s3.stop()
}
