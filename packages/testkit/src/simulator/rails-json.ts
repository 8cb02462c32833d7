/**
 * `ActiveSupport::JSON.encode`, which webhook bodies (`payload.to_json`) and ActionCable frames use:
 * like `JSON.stringify`, with `<`, `>`, `&`, U+2028 and U+2029 escaped (HTML-safe JSON, Rails'
 * default). Receivers that verify signatures must use the raw bytes, not a re-encoding.
 */
export function toRailsJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
