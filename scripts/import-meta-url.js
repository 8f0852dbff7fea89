// Injected by scripts/bundle.mjs into the CommonJS bundles, where import.meta.url is defined as this.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;
