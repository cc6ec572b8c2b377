// Chainloop's "http" SDK example: fetch the material's `check_url` through the host. A host outside
// the allow-list stops the evaluation (PERMISSION_DENIED); a non-200 answer is a violation.
import { JSON, getString, run, getMaterialJSONOrSkip, httpGet, logError, logInfo, outputResult, fail, success } from "../../../sdk/assemblyscript/assembly";

export function Execute(): i32 {
  return run(() => {
    const doc = getMaterialJSONOrSkip();
    if (doc === null) return;
    const url = getString(doc, "check_url");
    logInfo("Making HTTP request to: " + url);
    const response = httpGet(url);
    if (response.status != 200) {
      const why = "HTTP request failed with status " + response.status.toString();
      logError("HTTP request failed: " + why);
      outputResult(fail("failed to fetch data: " + why));
      return;
    }
    if (!response.json().isObj) {
      outputResult(fail("failed to fetch data: the response is not a JSON object"));
      return;
    }
    logInfo("HTTP request succeeded");
    outputResult(success());
  });
}
