import { isolationTests } from './isolation.js'

isolationTests('a')
