#!/usr/bin/env node
'use strict';
// The `sluice` command. This file is committed (not built) so that npm can link it when a fresh
// clone is installed, before `tsc --build` has produced dist/; it runs the compiled program.
const path = require('node:path');
const { existsSync } = require('node:fs');

const program = path.join(__dirname, '..', 'dist', 'bin.js');
if (!existsSync(program)) {
  process.stderr.write(
    `sluice: ${path.relative(process.cwd(), program) || program} is missing: build first (npm run build)\n`,
  );
  process.exit(1);
}
require(program);
