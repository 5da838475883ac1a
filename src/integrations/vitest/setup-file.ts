/** The setup file the plugin adds when tests need a VM of their worker's own or a reset per file. */
import { setUpWorker } from './worker.js'

await setUpWorker()
