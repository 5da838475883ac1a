// What the page loads: Stack Auth's browser SDK, bundled by app.mjs.
export { StackClientApp } from '@stackframe/js'
