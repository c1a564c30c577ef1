/**
 * The cold-process table (issue 15): every figure from fresh processes, as a script or a batch job
 * runs, several runs interleaved (ours, raw SDK, boto3, ours, …), median and spread. Beside each:
 * the raw AWS SDK doing the same work in a fresh process at the same concurrency, boto3 doing it
 * one request at a time (as Python s3exchange does) in a fresh python3 process, and the Python
 * s3exchange 0.1.1 figures of issue 15 (reference: measured by the filer on this machine type, not
 * in this run; Python s3exchange is not installable here).
 */
import { DEFAULT_FETCH_CONCURRENCY } from 's3exchange'
import type { ColdResult, ColdTask } from './cold-child.ts'
import { type BenchTarget, DEFAULT_PUT_CONCURRENCY, DEFAULT_SHARD_CONCURRENCY, PYTHON } from './context.ts'
import { datasetKeys, prepareBigShard, prepareLoose, prepareManifest, prepareShards, type Sizes } from './datasets.ts'
import { fmt, type Row, runChild, runProcess, type Spread, spread } from './lib.ts'
import type { ChildResult } from './read.ts'

/** Runs each contender `runs` times, interleaved, each run a fresh process; no warm-up (that is the point). */
export async function interleaved<T>(runs: number, contenders: Record<string, () => Promise<T>>): Promise<Record<string, T[]>> {
  const results: Record<string, T[]> = {}
  for (let run = 0; run < runs; run++) {
    for (const [name, fn] of Object.entries(contenders)) {
      results[name] ??= []
      results[name].push(await fn())
    }
  }
  return results
}

/** Runs bench/cold-child.ts once. */
export function coldChild(
  target: BenchTarget,
  task: Omit<ColdTask, 'endpoint' | 'bucket'>,
  endpoint = target.endpoint,
): Promise<ColdResult> {
  return runChild<ColdResult>('./cold-child.ts', [JSON.stringify({ ...task, endpoint, bucket: target.bucket })])
}

/** Runs bench/boto3-child.py once. */
export function boto3Child(
  target: BenchTarget,
  task: Omit<ColdTask, 'endpoint' | 'bucket' | 'impl'>,
  endpoint = target.endpoint,
): Promise<ColdResult> {
  const script = new URL('./boto3-child.py', import.meta.url).pathname
  return runProcess<ColdResult>('python3', [script, JSON.stringify({ ...task, endpoint, bucket: target.bucket })])
}

/** Items per second of each run. */
export const itemsPerSecond = (results: ColdResult[]): Spread => spread(results.map((r) => r.items / r.seconds))
/** MB (10^6 bytes) per second of each run. */
export const mbPerSecond = (results: { bytes: number; seconds: number }[]): Spread => spread(results.map((r) => r.bytes / 1e6 / r.seconds))
const maxRss = (results: { peakRssMb: number }[]) => Math.max(...results.map((r) => r.peakRssMb))

/** Checks that every run handled what it should have. */
export function expectItems(name: string, results: Record<string, ColdResult[]>, items: number): void {
  for (const [who, runs] of Object.entries(results))
    for (const run of runs) if (run.items !== items) throw new Error(`${name}: ${who} handled ${run.items} items, not ${items}`)
}

/** The cold-process benchmarks; returns the rows for RESULTS.md. */
export async function runColdBenches(target: BenchTarget, sizes: Sizes, runs: number, log: (line: string) => void): Promise<Row[]> {
  const { client, bucket } = target
  const rows: Row[] = []

  log('  preparing loose objects, shards, manifest, big shards…')
  const looseManifest = await prepareLoose(client, bucket, sizes.looseCount)
  const looseKeys = Array.from({ length: sizes.looseCount }, (_, i) => datasetKeys.looseKey(datasetKeys.loose(sizes.looseCount).prefix, i))
  const shardsManifest = await prepareShards(client, bucket, sizes.shards.count, sizes.shards.members)
  const archives = datasetKeys.shards(sizes.shards.count, sizes.shards.members).archives
  const manifest = await prepareManifest(client, bucket, sizes.manifestEntries)
  for (const mib of sizes.bigShardsMiB) await prepareBigShard(client, bucket, mib)

  log('  loose objects…')
  const loose = await interleaved(runs, {
    ours: () => coldChild(target, { workload: 'loose', impl: 'ours', key: looseManifest }),
    raw: () => coldChild(target, { workload: 'loose', impl: 'raw', keys: looseKeys, concurrency: DEFAULT_FETCH_CONCURRENCY }),
    boto3: () => boto3Child(target, { workload: 'loose', keys: looseKeys }),
  })
  expectItems('loose', loose, sizes.looseCount)
  {
    const [ours, raw, boto3] = [itemsPerSecond(loose.ours ?? []), itemsPerSecond(loose.raw ?? []), itemsPerSecond(loose.boto3 ?? [])]
    const vsPython = ours.median / PYTHON.loose.high
    rows.push({
      workload: `iterate ${fmt.int(sizes.looseCount)} loose 4 KiB objects (\`iterObjects\`, defaults: concurrency ${DEFAULT_FETCH_CONCURRENCY})`,
      ours: fmt.spread(ours, 'obj/s'),
      baseline: `raw GetObject ×${DEFAULT_FETCH_CONCURRENCY}: ${fmt.spread(raw, 'obj/s')}; boto3 one at a time: ${fmt.spread(boto3, 'obj/s')}`,
      ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
      python: `${PYTHON.loose.text} → ${fmt.ratio(vsPython)}`,
      target: '≥ 1.5× Python, ≥ 90% of raw',
      met: vsPython >= 1.5 && ours.median / raw.median >= 0.9,
    })
  }

  log('  tar.gz shards…')
  const shardItems = sizes.shards.count * sizes.shards.members
  const shards = await interleaved(runs, {
    ours: () => coldChild(target, { workload: 'shards', impl: 'ours', key: shardsManifest }),
    raw: () => coldChild(target, { workload: 'shards', impl: 'raw', keys: archives, concurrency: DEFAULT_SHARD_CONCURRENCY }),
    boto3: () => boto3Child(target, { workload: 'shards', keys: archives }),
  })
  // The internal manifest is a member too for tar-stream and tarfile.
  expectItems('shards', { ours: shards.ours ?? [] }, shardItems)
  expectItems('shards', { raw: shards.raw ?? [], boto3: shards.boto3 ?? [] }, shardItems + sizes.shards.count)
  {
    const perMember = (results: ColdResult[]) => spread(results.map((r) => shardItems / r.seconds))
    const [ours, raw, boto3] = [perMember(shards.ours ?? []), perMember(shards.raw ?? []), perMember(shards.boto3 ?? [])]
    const vsPython = ours.median / PYTHON.shards.high
    rows.push({
      workload: `iterate ${fmt.int(shardItems)} × 4 KiB in ${sizes.shards.count} tar.gz shards (one gzip stream each, as Python writes; \`iterObjects\`, defaults: ${DEFAULT_SHARD_CONCURRENCY} archives at once)`,
      ours: fmt.spread(ours, 'obj/s'),
      baseline: `raw: each archive one GET → gunzip → tar-stream, ${DEFAULT_SHARD_CONCURRENCY} at once: ${fmt.spread(raw, 'obj/s')}; boto3 + tarfile \`r|gz\`, one at a time: ${fmt.spread(boto3, 'obj/s')}`,
      ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
      python: `${PYTHON.shards.text} → ${fmt.ratio(vsPython)}`,
      target: '≥ 2× Python',
      met: vsPython >= 2,
    })
  }

  log('  manifest…')
  const manifests = await interleaved(runs, {
    ours: () => coldChild(target, { workload: 'manifest', impl: 'ours', key: manifest.key }),
    raw: () => coldChild(target, { workload: 'manifest', impl: 'raw', key: manifest.key }),
    boto3: () => boto3Child(target, { workload: 'manifest', key: manifest.key }),
  })
  expectItems('manifest', manifests, sizes.manifestEntries)
  {
    const [ours, raw, boto3] = [
      itemsPerSecond(manifests.ours ?? []),
      itemsPerSecond(manifests.raw ?? []),
      itemsPerSecond(manifests.boto3 ?? []),
    ]
    const vsPython = ours.median / PYTHON.manifest.high
    rows.push({
      workload: `read a ${fmt.int(sizes.manifestEntries)}-entry manifest (${(manifest.bytes / 1e6).toFixed(0)} MB) from S3 (\`iterManifestEntries\`)`,
      ours: fmt.spread(ours, 'entries/s'),
      baseline: `raw GET, whole text, split, JSON.parse per line: ${fmt.spread(raw, 'entries/s')}; boto3 + json.loads per line: ${fmt.spread(boto3, 'entries/s')}`,
      ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
      python: `${PYTHON.manifest.text} → ${fmt.ratio(vsPython)}`,
      target: '≥ 2.5× Python (≥ 700,000 entries/s)',
      met: vsPython >= 2.5 && ours.median >= 700_000,
    })
  }

  log('  puts…')
  let putRun = 0
  const puts = await interleaved(runs, {
    ours: () => coldChild(target, { workload: 'put', impl: 'ours', count: sizes.putCount, prefix: `cold/put/ours-${putRun++}` }),
    raw: () =>
      coldChild(target, {
        workload: 'put',
        impl: 'raw',
        count: sizes.putCount,
        prefix: `cold/put/raw-${putRun++}`,
        concurrency: DEFAULT_PUT_CONCURRENCY,
      }),
    boto3: () => boto3Child(target, { workload: 'put', count: sizes.putCount, prefix: `cold/put/boto3-${putRun++}` }),
  })
  expectItems('put', puts, sizes.putCount)
  {
    const [ours, raw, boto3] = [itemsPerSecond(puts.ours ?? []), itemsPerSecond(puts.raw ?? []), itemsPerSecond(puts.boto3 ?? [])]
    rows.push({
      workload: `put ${fmt.int(sizes.putCount)} × 4 KiB (\`putObjects\`, defaults: ${DEFAULT_PUT_CONCURRENCY} at once, entries in order)`,
      ours: fmt.spread(ours, 'obj/s'),
      baseline: `raw PutObject ×${DEFAULT_PUT_CONCURRENCY}: ${fmt.spread(raw, 'obj/s')}; boto3 one at a time: ${fmt.spread(boto3, 'obj/s')}`,
      ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
      python: `${PYTHON.put.text} → ${fmt.ratio(ours.median / PYTHON.put.high)}`,
      target: 'none in issue 15',
      met: undefined,
    })
  }

  for (const mib of sizes.bigShardsMiB) {
    log(`  ${mib} MiB plain shard…`)
    const keys = datasetKeys.bigShard(mib)
    const big = await interleaved(runs, {
      ours: () => coldChild(target, { workload: 'shard', impl: 'ours', key: keys.manifest }),
      raw: () => coldChild(target, { workload: 'shard', impl: 'raw', key: keys.archive }),
    })
    expectItems('big shard', { ours: big.ours ?? [] }, mib)
    expectItems('big shard', { raw: big.raw ?? [] }, mib + 1)
    const [ours, raw] = [mbPerSecond(big.ours ?? []), mbPerSecond(big.raw ?? [])]
    const [oursRss, rawRss] = [maxRss(big.ours ?? []), maxRss(big.raw ?? [])]
    rows.push({
      workload: `iterate a ${mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`} plain tar shard (${fmt.int(mib)} × 1 MiB members; \`iterObjects\`, bodies streamed), peak RSS (highest run)`,
      ours: `${fmt.spread(ours, 'MB/s')}, peak RSS ${fmt.int(oursRss)} MB`,
      baseline: `raw: one GET → tar-stream: ${fmt.spread(raw, 'MB/s')}, peak RSS ${fmt.int(rawRss)} MB`,
      ratio: `${fmt.pct(ours.median / raw.median)} of raw`,
      python: mib === 256 ? PYTHON.shard256.text : 'Python: RSS grows with the shard',
      target: 'peak RSS ≤ 200 MB',
      met: oursRss <= 200,
    })
  }

  log(`  writing a ${sizes.writeShardMiB} MiB shard…`)
  const writes = await interleaved(runs, {
    ours: () =>
      runChild<ChildResult>('./write-shard-child.ts', [
        'ours',
        target.endpoint,
        bucket,
        'cold/write/shard.tar',
        String(sizes.writeShardMiB),
      ]),
    raw: () =>
      runChild<ChildResult>('./write-shard-child.ts', [
        'raw',
        target.endpoint,
        bucket,
        'cold/write/upload.bin',
        String(sizes.writeShardMiB),
      ]),
  })
  {
    const [ours, raw] = [mbPerSecond(writes.ours ?? []), mbPerSecond(writes.raw ?? [])]
    const [oursRss, rawRss] = [maxRss(writes.ours ?? []), maxRss(writes.raw ?? [])]
    const size = sizes.writeShardMiB >= 1024 ? `${sizes.writeShardMiB / 1024} GiB` : `${sizes.writeShardMiB} MiB`
    rows.push({
      workload: `write a ${size} plain tar shard (\`ShardWriter\`, ${fmt.int(sizes.writeShardMiB)} × 1 MiB members, defaults), peak RSS (highest run)`,
      ours: `${fmt.spread(ours, 'MB/s')}, peak RSS ${fmt.int(oursRss)} MB`,
      baseline: `lib-storage \`Upload\` of the same bytes streamed (8 MiB parts, queue 4): ${fmt.spread(raw, 'MB/s')}, peak RSS ${fmt.int(rawRss)} MB`,
      ratio: `${fmt.pct(ours.median / raw.median)} of Upload`,
      python: 'Python: the whole archive in memory or a temporary file',
      target: '≥ 80% of Upload, peak RSS ≤ 250 MB',
      met: ours.median / raw.median >= 0.8 && oursRss <= 250,
    })
  }
  return rows
}
