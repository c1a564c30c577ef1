/**
 * The quickstart: the seed README's flow, end to end, in TypeScript.
 *
 * A producing service puts objects, writes manifests (overwrite, then append_parts), packs samples
 * into tar.gz shards and publishes them, and streams more through a ManifestWriter; a consuming
 * service reads it all back, loose objects and shard members alike. Then the same consumer reads
 * a bucket that the Python library wrote, to show the two exchange data both ways.
 *
 * Runs against an embedded local S3 (fauxqs, in this process) by default, or against the server
 * named by S3_ENDPOINT_URL (with S3_AWS_ACCESS_KEY_ID, S3_AWS_SECRET_ACCESS_KEY, S3_REGION and
 * S3_BUCKET) when that is set.
 *
 *   npx pnpm@10 demo
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocalS3, uploadDirectory } from '@s3exchange/testing'
import { type FileEntry, ObjectNotFoundError, S3ExchangeStore, Shard, type ShardEntry, type ShardItem } from 's3exchange'

const s3 = await startLocalS3()
const workdir = await mkdtemp(join(tmpdir(), 's3x-quickstart-'))
try {
  const bucket = await s3.createBucket(s3.external ? undefined : 'quickstart')
  console.log(`S3: ${s3.external ? 'external server' : 'embedded local S3'} at ${s3.endpoint}, bucket ${bucket}\n`)

  // --- Initialize a store with your own client -------------------------------------------------
  const store = new S3ExchangeStore({
    client: s3.client,
    bucket,
    basePrefix: 'prod',
    defaultVars: { service_name: 'training-service' },
  })
  const samples = store.resolveKey('{service_name}/jobs/{job_id}/samples', { job_id: 123 })
  const manifestKey = `${samples}/manifest.jsonl`
  console.log(`keys are built from templates: ${samples}`)

  // --- Write objects -----------------------------------------------------------------------------
  section('put objects')
  const wav = (seconds: number) => Buffer.alloc(16_000 * seconds, seconds)
  const file1 = await store.putObject(`${samples}/file1.wav`, wav(1), {
    id: 'file-001',
    meta: { sr: 16000, length: 16000 },
    contentType: 'audio/wav',
  })
  print(file1)
  const localPath = join(workdir, 'file2.wav')
  await writeFile(localPath, wav(2))
  const file2 = await store.putObject(`${samples}/file2.wav`, localPath, { id: 'file-002' }) // from a path, as in Python
  print(file2)

  // --- Write manifests ---------------------------------------------------------------------------
  section('write a manifest (overwrite), then add to it (append_parts)')
  await store.writeManifest(manifestKey, [file1, file2], { mode: 'overwrite' })
  const file3 = await store.putObject(`${samples}/file3.wav`, wav(3), { id: 'file-003' })
  const appended = await store.writeManifest(manifestKey, [file3], { mode: 'append_parts' })
  console.log(`appended part: ${'parts' in appended ? appended.parts.join(', ') : ''}`)
  for await (const entry of store.iterManifestEntries(manifestKey, { resolveRefs: false })) print(entry)

  // --- Shard archives ----------------------------------------------------------------------------
  section('pack 20 samples into tar.gz shards of at most 8, and publish them')
  const items: ShardItem[] = Array.from({ length: 20 }, (_, i) => ({
    source: Buffer.from(`sample ${i}: ${'♪'.repeat(i)}`),
    member_path: `${String(i).padStart(4, '0')}.txt`,
    id: String(i).padStart(4, '0'),
    meta: { sr: 16000 },
  }))
  const shardEntries: ShardEntry[] = []
  let index = 0
  for (const batch of Shard.splitItems(items, { maxEntries: 8, maxBytes: 1024 * 1024 * 1024 })) {
    const archiveKey = `${samples}/shards/shard-${String(index++).padStart(5, '0')}.tar.gz`
    const shard = await store.putShardArchive(archiveKey, batch, { format: 'tar', compression: 'gzip' })
    shardEntries.push(shard.entry)
    print(shard.entry)
  }
  await store.putSharded(manifestKey, shardEntries, { updateMode: 'append_parts' })

  // --- A ManifestWriter: objects and shard members as they come, published once at close() -------
  section('stream more through a ManifestWriter')
  {
    await using writer = store.openManifestWriter(manifestKey, { shardSize: { maxEntries: 4 }, shardCompression: 'gzip' })
    await writer.putObject(`${samples}/notes.txt`, Buffer.from('recorded on a quiet day'), { contentType: 'text/plain' })
    for (let i = 20; i < 26; i++) await writer.addToShard(`${i}.txt`, Buffer.from(`sample ${i}`), { id: String(i) })
    const stats = writer.stats()
    await writer.close() // publish: every part reaches the root in one conditional write
    console.log(`writer: ${stats.shardsCreated} shard written before close, ${stats.shardEntries} members pending at close; published`)
  }

  // --- Read it all back --------------------------------------------------------------------------
  section('read it all back')
  let rootEntries = 0
  for await (const _ of store.iterManifestEntries(manifestKey, { resolveRefs: false })) rootEntries++
  let loose = 0
  let members = 0
  let bytes = 0
  for await (const { entry, body } of store.iterObjects(manifestKey, { concurrency: 8 })) {
    bytes += (await body.bytes()).byteLength
    if ((entry as FileEntry).archive_key) members++
    else loose++
  }
  console.log(`root: ${rootEntries} lines; objects: ${loose} loose + ${members} shard members, ${bytes} bytes`)

  const memberKey = `${samples}/shards/shard-00001.tar.gz#0009.txt`
  console.log(`getObject('${memberKey}') → ${JSON.stringify(await (await store.getObject(memberKey)).text())}`)

  let listed = 0
  for await (const _ of store.listManifestFiles(manifestKey, { includeShards: true })) listed++
  const matching: string[] = []
  for await (const entry of store.listByManifestPrefix(manifestKey, `${samples}/shards/shard-00002`)) matching.push(entry.key as string)
  console.log(`listManifestFiles: ${listed} files; listByManifestPrefix('…/shard-00002'): ${matching.join(', ')}`)

  try {
    await store.getObject(`${samples}/missing.wav`)
  } catch (error) {
    if (error instanceof ObjectNotFoundError) console.log(`a missing key is a typed error: ${error.name} (${error.key})`)
  }

  // --- Lifecycle: list, compact, download, delete -------------------------------------------------
  section('list, compact, download, delete')
  let keyCount = 0
  for await (const _ of store.listKeys(`${samples}/`)) keyCount++
  console.log(`listKeys('${samples}/'): ${keyCount} objects (loose files, shards, manifests, parts)`)

  const compactKey = `${samples}/manifest-compact.jsonl`
  const compacted = await store.compactManifest(manifestKey, compactKey, { resolveRefs: true, expandShards: false })
  console.log(`compactManifest → ${compactKey}: ${JSON.stringify(compacted)}`)

  const downloaded = await store.downloadManifest(compactKey, join(workdir, 'download'), { concurrency: 8 })
  console.log(`downloadManifest: ${downloaded.size} files under ${join(workdir, 'download')}`)

  const dry = await store.deleteManifest(manifestKey, { referencedManifests: true, dryRun: true })
  console.log(
    `deleteManifest (dry run): would delete ${dry.deletedObjectCount} objects, ${dry.deletedArchiveCount} archives, ${dry.deletedManifestCount} manifests`,
  )
  const report = await store.deleteManifest(manifestKey, { referencedManifests: true })
  console.log(
    `deleteManifest: deleted ${report.deletedObjectCount} objects, ${report.deletedArchiveCount} archives, ${report.deletedManifestCount} manifests, ${Object.keys(report.errors).length} errors`,
  )
  const leftovers = /\.jsonl$/
  const rest = await store.deletePrefix(`${samples}/`, { regex: leftovers })
  console.log(`deletePrefix('${samples}/', { regex: ${leftovers} }): ${rest} more`)
  try {
    await store.deletePrefix('')
  } catch (error) {
    console.log(`deletePrefix('') is refused: ${(error as Error).message}`)
  }

  // --- And what a Python service published -------------------------------------------------------
  section('read a bucket that Python s3exchange 0.1.1 wrote')
  await uploadDirectory(s3.client, bucket, join(import.meta.dirname, '../test/fixtures/python-s3exchange-0.1.1/bucket'))
  const python = new S3ExchangeStore({ client: s3.client, bucket })
  for (const root of [
    'exchange/shared/mixed/manifest.jsonl',
    'exchange/shared/shards/manifest.jsonl',
    'exchange/shared/writer/manifest.jsonl',
  ]) {
    let count = 0
    let size = 0
    for await (const { body } of python.iterObjects(root)) {
      size += (await body.bytes()).byteLength
      count++
    }
    console.log(`${root}: ${count} objects, ${size} bytes`)
  }
  console.log('\nDone: written by TypeScript and read back; written by Python and read by TypeScript.')
} finally {
  await rm(workdir, { recursive: true, force: true })
  await s3.stop()
}

function section(title: string): void {
  console.log(`\n== ${title}`)
}

function print(entry: object): void {
  console.log(`   ${JSON.stringify(entry)}`)
}
