/**
 * The setup file the plugin adds: each worker's VM (isolation 'worker') and the reset per file;
 * and, for every test, the emulator's logs in the report when it fails (nothing read otherwise).
 */
import { attachLogsOnFailure } from './failure-logs.js'
import { setUpWorker } from './worker.js'

await setUpWorker()
attachLogsOnFailure()
