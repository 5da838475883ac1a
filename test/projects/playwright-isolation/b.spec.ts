import { isolationTests } from './isolation.js'

isolationTests('b')
