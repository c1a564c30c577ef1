/**
 * Every command of `s3x`, in the order `s3x --help` lists them.
 *
 * @example
 * ```ts
 * import { commands } from '@s3exchange/cli'
 *
 * for (const command of commands) console.log(command.name, '-', command.summary)
 * ```
 */
import type { Command } from '../command.js'
import { cat } from './cat.js'
import { compact } from './compact.js'
import { doctor } from './doctor.js'
import { follow } from './follow.js'
import { get } from './get.js'
import { ls } from './ls.js'
import { manifestLs } from './manifest-ls.js'
import { pack } from './pack.js'
import { put } from './put.js'
import { rm } from './rm.js'
import { stat } from './stat.js'
import { verify } from './verify.js'

export const commands: readonly Command[] = [ls, manifestLs, follow, cat, get, put, pack, compact, rm, verify, stat, doctor]
