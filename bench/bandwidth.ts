/**
 * The bandwidth table (issue 15): a big plain shard iterated, and the same archive read as one big
 * object (`getObject`, `downloadObject`), through the test proxy capped at 25 MB/s per connection
 * (as one connection to S3 carries some tens of MB/s), each run a fresh process. Ours at the
 * defaults (parallel ranged reads: 8 MiB ranges, 4 at once beside the object's own GET); beside each,
 * the raw AWS SDK with one GET (what the library did before) and with N ranged GETs at once (what a
 * parallel ranged read can reach).
 */
import { startS3Proxy } from '@s3exchange/testing'
import { coldChild, interleaved, mbPerSecond } from './cold.ts'
import type { BenchTarget } from './context.ts'
import { prepareBigShard, type Sizes } from './datasets.ts'
import { fmt, type Row, type Spread } from './lib.ts'

export const BYTES_PER_SECOND_PER_CONNECTION = 25e6
/** The raw parallel ranged read: this many GETs of `RANGE_MIB` at once. */
export const RANGED = { concurrency: 8, rangeMiB: 8 }

/** The bandwidth benchmarks; returns the rows for RESULTS.md. */
export async function runBandwidthBenches(target: BenchTarget, sizes: Sizes, runs: number, log: (line: string) => void): Promise<Row[]> {
  const mib = sizes.bandwidthMiB
  log(`  preparing a ${mib} MiB shard…`)
  const keys = await prepareBigShard(target.client, target.bucket, mib)
  const proxy = await startS3Proxy({
    target: target.endpoint,
    bytesPerSecondPerConnection: BYTES_PER_SECOND_PER_CONNECTION,
    recordRequests: false,
  })
  const via = proxy.endpoint
  let results: Record<string, { bytes: number; seconds: number }[]>
  try {
    log(`  ${mib} MiB through 25 MB/s per connection (${runs} run(s) of 8 reads)…`)
    results = await interleaved(runs, {
      shardOurs: () => coldChild(target, { workload: 'shard', impl: 'ours', key: keys.manifest }, via),
      shardRaw: () => coldChild(target, { workload: 'shard', impl: 'raw', key: keys.archive }, via),
      shardRanged: () => coldChild(target, { workload: 'shard', impl: 'ranged', key: keys.archive, ...RANGED }, via),
      objectOurs: () => coldChild(target, { workload: 'object', impl: 'ours', key: keys.archive }, via),
      objectRaw: () => coldChild(target, { workload: 'object', impl: 'raw', key: keys.archive }, via),
      objectRanged: () => coldChild(target, { workload: 'object', impl: 'ranged', key: keys.archive, ...RANGED }, via),
      downloadOurs: () => coldChild(target, { workload: 'download', impl: 'ours', key: keys.archive }, via),
      downloadRaw: () => coldChild(target, { workload: 'download', impl: 'raw', key: keys.archive }, via),
    })
  } finally {
    await proxy.stop()
  }
  const rate = (name: string): Spread => mbPerSecond(results[name] ?? [])
  const ranged = `${RANGED.concurrency} ranged GETs of ${RANGED.rangeMiB} MiB at once`
  const row = (workload: string, ours: Spread, one: Spread, oneText: string, many: Spread, manyText: string, python: string): Row => ({
    workload,
    ours: fmt.spread(ours, 'MB/s'),
    baseline: `${oneText}: ${fmt.spread(one, 'MB/s')}; ${manyText}: ${fmt.spread(many, 'MB/s')}`,
    ratio: `${fmt.ratio(ours.median / one.median)} one GET (${ranged}: ${fmt.ratio(many.median / one.median)})`,
    python,
    target: '≥ 4× one GET',
    met: ours.median / one.median >= 4,
  })
  const size = `${mib} MiB`
  return [
    row(
      `iterate a ${size} plain tar shard (\`iterObjects\`, defaults, bodies streamed)`,
      rate('shardOurs'),
      rate('shardRaw'),
      'raw one GET → tar-stream',
      rate('shardRanged'),
      `raw ${ranged}, in order → tar-stream`,
      'Python: one GET per archive',
    ),
    row(
      `read a ${size} object (\`getObject\`, the shard archive as one object, body streamed)`,
      rate('objectOurs'),
      rate('objectRaw'),
      'raw one GET',
      rate('objectRanged'),
      `raw ${ranged}, in order`,
      'Python: one GET',
    ),
    row(
      `download the ${size} object to a local file (\`downloadObject\`)`,
      rate('downloadOurs'),
      rate('downloadRaw'),
      'raw one GET piped to a file',
      rate('objectRanged'),
      `raw ${ranged}, in order, to memory (the row above)`,
      'Python: one GET',
    ),
  ]
}
