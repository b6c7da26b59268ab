// Prints the closing `N passed, N failed` line from vitest's JSON report (CI reads this line).
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-results.json';
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log(`no test report at ${file}: ${e.message}`);
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const failedSuites = (r.testResults ?? []).filter((s) => s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed')).length;
const passed = r.numPassedTests ?? 0;
const failed = (r.numFailedTests ?? 0) + failedSuites;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
