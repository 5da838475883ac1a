import { fileURLToPath } from 'node:url'

/** The package's root folder, from src/ (tests) and dist/ (published) alike. */
export const packageRoot = fileURLToPath(new URL('../', import.meta.url))
