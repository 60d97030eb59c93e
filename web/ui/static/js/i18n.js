// Interface strings in the page's language. The page embeds the catalog messages flagged
// `js` (web/ui/i18n.py) as JSON in <script type="application/json" id="i18n-strings">;
// keys are the English text, parameters are written {name}.
import { pageData } from "./dom.js";

const strings = pageData("i18n-strings") ?? {};

/** The page's language and direction (from <html lang dir>). */
export const lang = document.documentElement.lang || "en";
export const dir = document.documentElement.dir || "ltr";

/**
 * t("Online"), or with parameters t(key, { name: value }). A key missing from the catalog is
 * shown as it is (English) and reported once on the console as a warning.
 */
export function t(key, params = {}) {
  let text = strings[key];
  if (text === undefined) {
    warnMissing(key);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(params, name) ? format(params[name]) : whole,
  );
}

const numbers = new Intl.NumberFormat(lang);
function format(value) {
  return typeof value === "number" ? numbers.format(value) : String(value);
}

const missing = new Set();
function warnMissing(key) {
  if (missing.has(key)) return;
  missing.add(key);
  console.warn(`i18n: no catalog entry for ${JSON.stringify(key)} (flag it "js" in a .po)`);
}
