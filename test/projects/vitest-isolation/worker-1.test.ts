import { workerTest } from './worker-test.js'

workerTest(1)
