// The linter: typescript-eslint's type-aware rules over the sources and the
// tests (through tsconfig.test.json), and the plain rules over the scripts,
// benchmarks and tools written in JavaScript. `npm test` runs it; it must stay clean.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'github-action/dist/**', 'node_modules/**', 'bench/.work/**', '**/.beacon/**', 'test/fixtures/**', 'schema/types.gen.ts'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Stores, fakes and handlers implement async interfaces; many need no await of their own.
      '@typescript-eslint/require-await': 'off',
      // An abort passes on the signal's own reason, whatever the caller aborted with: not ours to wrap.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // MCP's error codes are numbers on the wire and an enum in the SDK: comparing the two is what the SDK means.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
    },
  },
  {
    // Tests read what they check from JSON and from fakes of third-party wire formats: values typed any there are
    // the test's to check (and each is checked by an assertion), not the code's.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    // The dashboard's page script runs in the browser, not in Node.
    files: ['reconciler/dashboard/assets/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
