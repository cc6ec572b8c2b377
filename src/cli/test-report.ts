/** How `wasm-policyd test` reports: for people, or for a CI system (TAP, JUnit XML, JSON). */
export const REPORT_FORMATS = ['text', 'tap', 'junit', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface CaseResult {
  name: string;
  /** Why the case failed; undefined when it passed. */
  problem?: string;
  seconds: number;
}

const xml = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderReport(policy: string, results: CaseResult[], format: ReportFormat): string {
  const failed = results.filter((r) => r.problem !== undefined).length;
  switch (format) {
    case 'text':
      return `${results.map((r) => (r.problem === undefined ? `ok - ${r.name}` : `not ok - ${r.name}: ${r.problem}`)).join('\n')}\n${results.length - failed} passed, ${failed} failed\n`;
    case 'tap': {
      const lines = results.map((r, i) =>
        r.problem === undefined
          ? `ok ${i + 1} - ${r.name}`
          : `not ok ${i + 1} - ${r.name}\n  ---\n  message: ${JSON.stringify(r.problem)}\n  ...`,
      );
      return `TAP version 14\n1..${results.length}\n${lines.join('\n')}\n`;
    }
    case 'junit': {
      const seconds = results.reduce((n, r) => n + r.seconds, 0).toFixed(3);
      const cases = results.map((r) => {
        const open = `    <testcase classname="${xml(policy)}" name="${xml(r.name)}" time="${r.seconds.toFixed(3)}"`;
        return r.problem === undefined ? `${open}/>` : `${open}>\n      <failure message="${xml(r.problem)}"/>\n    </testcase>`;
      });
      return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites tests="${results.length}" failures="${failed}" time="${seconds}">\n  <testsuite name="${xml(policy)}" tests="${results.length}" failures="${failed}" time="${seconds}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
    }
    case 'json':
      return `${JSON.stringify({ policy, passed: results.length - failed, failed, cases: results.map((r) => ({ name: r.name, ok: r.problem === undefined, ...(r.problem === undefined ? {} : { problem: r.problem }) })) }, null, 2)}\n`;
  }
}
