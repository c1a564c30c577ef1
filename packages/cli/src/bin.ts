#!/usr/bin/env node
/**
 * The `s3x` executable: runs {@link main} with the command line and exits with its code. A reader
 * that goes away (`s3x ls … | head`) ends the run quietly, as a closed pipe ends any Unix tool.
 *
 * @example
 * ```sh
 * s3x --help
 * npx pnpm@10 s3x manifest ls training/123/samples/manifest.jsonl   # from the repository root, after a build
 * ```
 */
import { main } from './main.js'

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw error
})

process.exitCode = await main(process.argv.slice(2))
