#!/usr/bin/env node
/** The stack-emulator command line. */
import { runCli } from './commands.js'
import { ignoreClosedOutput } from './output.js'

ignoreClosedOutput()
process.exitCode = await runCli(process.argv.slice(2))
