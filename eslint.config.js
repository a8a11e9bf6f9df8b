// Lint rules: typescript-eslint's recommended set on top of ESLint's; formatting is prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'training/',
      'coverage/',
      // benchmark output (var/benchmark/build holds the benchmark's compiled copy of src/)
      'var/',
      '.tap/',
      'models/',
      'src/serve/dashboard/public/vendor/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The daemon's modules stay small enough to read in one sitting; a longer file or function
    // must be one cohesive algorithm, and says so where the limit is lifted.
    files: ['src/**/*.ts', 'src/**/*.js'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    // One-dimensional K-means with k-means++ seeding and Lloyd's iterations, the paper's algorithm.
    files: ['src/segment/kmeans1d.ts'],
    rules: { 'max-lines': 'off' },
  },
);
