import type { z } from 'zod';

/** zod's issues as one line a person can act on: `path.to.key: what is wrong; …` (`root` for the top). */
export function describeIssues(error: z.ZodError, root = '(root)'): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : root}: ${issue.message}`).join('; ');
}
