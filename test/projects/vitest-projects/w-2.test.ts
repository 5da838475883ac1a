import { workerFile } from './worker-tests.js'

workerFile('w2')
