// Module boundaries of src/, checked by `npm run lint` (depcruise src).
// The stages are libraries the composition root (src/app.ts) wires together; the commands in
// src/cli/ are leaves that only the entry point (src/cli.ts) loads. Type-only imports count too:
// a type from another layer is still a dependency on it.
/* global module */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle makes load order matter and the modules inseparable.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'pipeline-not-to-outputs',
      severity: 'error',
      comment:
        'src/pipeline/ connects the stages; publishing (MQTT) and serving (HTTP) consume its events, never the other way round.',
      from: { path: '^src/pipeline/' },
      to: { path: '^src/(publish|serve)/' },
    },
    {
      name: 'outputs-not-to-pipeline',
      severity: 'error',
      comment:
        'src/publish/ and src/serve/ get what they need from src/app.ts through their own interfaces, not from the pipeline internals.',
      from: { path: '^src/(publish|serve)/' },
      to: { path: '^src/pipeline/' },
    },
    {
      name: 'cli-only-from-entry',
      severity: 'error',
      comment: 'The commands are loaded by the entry point src/cli.ts only; nothing else depends on them.',
      from: { pathNot: ['^src/cli/', '^src/cli\\.ts$'] },
      to: { path: '^src/cli/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve would otherwise hide its edge from the rules above.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/serve/dashboard/public/' },
    // Type-only imports are dependencies too (see above).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // NodeNext ESM: sources import './x.js' and the file is ./x.ts (resolved via the tsconfig).
    enhancedResolveOptions: {
      // Packages are resolved the way Node resolves them: through package.json "exports" first
      // (some dependencies declare no "main").
      exportsFields: ['exports'],
      extensions: ['.ts', '.js', '.json', '.d.ts'],
      // A types-only package (@medplum/fhirtypes) names its entry in "types" alone.
      mainFields: ['module', 'main', 'types'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    skipAnalysisNotInRules: true,
  },
};
