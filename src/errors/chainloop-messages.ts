/**
 * Chainloop's user-facing texts for policy execution failures
 * (pkg/policies/engine/wasm/errors.go), so a Go control plane shows its users what it showed before.
 */
const DEBUG_HINT = 'Enable debug logging with --debug for more details.';

function render(message: string, hint: string): string {
  return `policy execution failed: ${message}\n\nHint: ${hint}`;
}

/** Chainloop's http_forbidden text; `why` replaces its reason (the SSRF guard gives its own). */
export function httpForbiddenMessage(url: string, why = 'is not in the allowed hosts list'): string {
  const hostname = url.replace(/^https?:\/\//, '').split(/[/:]/, 1)[0] ?? '';
  return render(
    `HTTP request blocked - hostname '${hostname}' ${why}`,
    `Add the hostname using --allowed-hostnames flag or configure it in your policy engine.\nAttempted URL: ${url}`,
  );
}

export function timeoutMessage(): string {
  return render(
    'Policy execution timeout exceeded',
    'The policy took too long to execute. Consider optimizing network calls, reducing data processing, or increasing the timeout with WithExecutionTimeout().',
  );
}

export function memoryMessage(): string {
  return render(
    'Policy exceeded memory limits',
    'Review data structures and avoid loading large files entirely into memory. Consider streaming or processing data in chunks.',
  );
}

export function runtimeErrorMessage(detail: string): string {
  return render(
    `Runtime error in policy: ${detail}`,
    'The policy encountered an unexpected error. Enable debug logging with --debug to see detailed stack traces.',
  );
}

/** Chainloop's fallback: the first line of the error, wazero artefacts removed. */
export function unknownErrorMessage(text: string): string {
  const first = text
    .split('\n')
    .map((line) => line.replaceAll(' (recovered by wazero)', '').trim())
    .find((line) => line !== '');
  if (first === undefined || first.startsWith('wasm stack trace:')) {
    return render('Policy execution failed', 'Enable debug logging with --debug for detailed error information.');
  }
  return render(first, DEBUG_HINT);
}
