// Validates an AsyncAPI document with the official @asyncapi/parser.
// Usage: node validate-asyncapi.mjs <file>. Prints diagnostics as JSON; exit 1 on any error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), {
  source: file,
});
// severity 0 = error, 1 = warning, 2 = info, 3 = hint
const errors = diagnostics.filter((d) => d.severity === 0);
const warnings = diagnostics.filter((d) => d.severity === 1);
console.log(
  JSON.stringify({
    valid: document !== undefined && errors.length === 0,
    version: document ? document.version() : null,
    channels: document ? document.channels().length : 0,
    errors: errors.map((d) => ({ code: d.code, message: d.message, path: d.path })),
    warnings: warnings.map((d) => ({ code: d.code, message: d.message, path: d.path })),
  }),
);
process.exit(document !== undefined && errors.length === 0 ? 0 : 1);
