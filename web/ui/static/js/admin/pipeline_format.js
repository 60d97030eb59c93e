// Figures of the pipeline and merge screens in the page's language, through Intl.
import { ApiError } from "../api.js";
import { lang, t } from "../i18n.js";

const currencies = new Map();
const numbers = new Intl.NumberFormat(lang);

/**
 * An amount of money ({ amount: "1234.50", currency: "EUR" }) as the page's language writes
 * it. The amount goes to Intl as its decimal string, so it is formatted exactly (no float).
 */
export function money({ amount, currency }) {
  let format = currencies.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(lang, { style: "currency", currency });
    currencies.set(currency, format);
  }
  return format.format(amount);
}

/** A count, e.g. "1,204" or "۱٬۲۰۴". */
export function count(n) {
  return numbers.format(n);
}

/** What went wrong with an API call, in words for a message. */
export function failure(error) {
  if (!(error instanceof ApiError)) return t("No connection. Check your network and try again.");
  if (error.notFound) return t("It is gone, or you no longer have access to it.");
  const [first] = Object.values(error.fields ?? {});
  return first ?? error.message;
}
