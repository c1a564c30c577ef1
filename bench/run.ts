/**
 * Runs the benchmarks and writes bench/RESULTS.md. Every figure is a ratio against a baseline
 * measured in the same run (the raw AWS SDK doing the same job), beside Python s3exchange's
 * reference figures from DESIGN.md.
 *
 *   npx pnpm@10 bench            # everything (a few minutes)
 *   BENCH_QUICK=1 npx pnpm@10 bench   # one run each, no 1 GiB shards
 *
 * Sections of RESULTS.md that other scripts write (the soak of bench/soak.ts) are kept.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { benchClient, startServerProcess, table } from './lib.ts'
import { runRandomBenches } from './random.ts'
import { prepareReadData, runReadBenches } from './read.ts'
import { runWriteBenches } from './write.ts'

const quick = process.env.BENCH_QUICK === '1'
const runs = quick ? 1 : 3
const bigShards = quick ? [256] : [256, 1024]

const server = await startServerProcess()
const client = benchClient(server.endpoint)
try {
  const bucket = 'bench'
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  console.log(`server ${server.endpoint}; preparing data…`)
  await prepareReadData(client, bucket, bigShards)
  console.log('reading…')
  const readRows = await runReadBenches(client, server.endpoint, bucket, bigShards, runs)
  console.log('random access…')
  const randomRows = await runRandomBenches(client, server.endpoint, bucket, runs)
  console.log('writing…')
  const writeRows = await runWriteBenches(client, server.endpoint, bucket, !quick, runs)
  const report = `# Benchmark results

Written by \`npx pnpm@10 bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores,
${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, against fauxqs on loopback in a separate process.
Each figure is the median of ${runs} run(s), ours and the baseline interleaved in the same process; big-shard
reads run in child processes of their own so that peak RSS is theirs alone. The S3 client has the AWS SDK's
default settings (response checksum validation \`WHEN_SUPPORTED\`) for both. Python figures are the reference
measurements of DESIGN.md (Python s3exchange 0.1.1 with boto3, same machine type, same server).
Machines here are shared and noisy: compare ratios within a run, not absolute figures across runs.

## Reads

${table(readRows)}

## Random access and parallel reads

${table(randomRows)}

## Writes

${table(writeRows)}
`
  const results = new URL('./RESULTS.md', import.meta.url)
  await writeFile(results, report + (await otherSections(results, report)))
  console.log(report)
} finally {
  client.destroy()
  await server.stop()
}

/** The `## ` sections of the current RESULTS.md that `report` does not have, kept as they are. */
async function otherSections(path: URL, report: string): Promise<string> {
  const current = await readFile(path, 'utf8').catch(() => '')
  const ours = new Set(report.match(/^## .*$/gm) ?? [])
  const sections = current.split(/^(?=## )/m).filter((section) => section.startsWith('## '))
  const kept = sections.filter((section) => !ours.has(section.split('\n', 1)[0] as string))
  return kept.map((section) => `\n${section.trimEnd()}\n`).join('')
}
