// Chainloop's "simple" SDK example: the material's `message` must be non-empty, free of forbidden
// words and no longer than the `max_length` argument (default 100).
import { JSON, getString, run, getArgs, getMaterialJSONOrSkip, logError, logInfo, outputResult, success } from "../../../sdk/assemblyscript/assembly";

const FORBIDDEN = ["forbidden", "banned", "prohibited"];

export function Execute(): i32 {
  return run(() => {
    let maxLength = 100;
    const args = getArgs();
    if (args.has("max_length")) {
      const parsed = I32.parseInt(args.get("max_length"));
      if (!isNaN(parsed)) maxLength = <i32>parsed;
    }
    logInfo("Validating message with max length: " + maxLength.toString());

    const doc = getMaterialJSONOrSkip();
    if (doc === null) return;
    const message = getString(doc, "message");

    const result = success();
    if (message.length == 0) {
      result.addViolation("message cannot be empty");
      outputResult(result);
      return;
    }
    const lower = message.toLowerCase();
    for (let i = 0; i < FORBIDDEN.length; i++) {
      if (lower.includes(FORBIDDEN[i])) result.addViolation("message contains forbidden word: " + FORBIDDEN[i]);
    }
    const bytes = String.UTF8.byteLength(message);
    if (bytes > maxLength) {
      result.addViolation("message too long: " + bytes.toString() + " characters (max " + maxLength.toString() + ")");
    }
    if (result.hasViolations()) logError("Validation failed with " + result.violations.length.toString() + " violations");
    else logInfo("Validation passed for message: " + message);
    outputResult(result);
  });
}
