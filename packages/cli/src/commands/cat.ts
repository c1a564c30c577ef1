/**
 * `s3x cat <key | archive#member>`: an object's bytes to stdout, streamed and binary-safe. A
 * virtual key `archive#member` reads one member of a shard (one ranged GET for the shards this
 * library writes); when no archive exists under the part before `#`, the whole string is read as
 * an ordinary key, as the library does.
 *
 * @example
 * ```sh
 * s3x cat training/123/samples/shards/shard-…-00000.tar#a/0001.wav > 0001.wav
 * s3x cat training/123/samples/manifest.jsonl | head
 * ```
 */
import type { Command } from '../command.js'

export const cat: Command = {
  name: 'cat',
  usage: 'cat <key | archive#member | s3://bucket/key>',
  summary: 'write an object or a shard member to stdout',
  description: `Writes the bytes of <key> to stdout, streamed. A virtual key archive#member reads
one member of a shard archive.

Examples:
  s3x cat training/123/samples/file.wav > file.wav
  s3x cat s3://datasets/training/123/samples/manifest.jsonl | head
  s3x cat 'training/123/samples/shards/shard-00000.tar#a/0001.wav' | sha256sum`,
  options: {},
  optionHelp: [],
  args: { min: 1, max: 1 },
  operands: { args: [['<key>', 'key']] },
  async run({ args, store, output }) {
    const body = await store().getObject(args[0] as string)
    try {
      for await (const chunk of body) await output.write(chunk as Uint8Array)
    } finally {
      body.destroy()
    }
    return 0
  },
}
