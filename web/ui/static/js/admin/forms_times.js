// The forms pages write times in UTC; once this runs they read in the browser's own
// time zone and language (time.js).
import { qsa } from "../dom.js";
import { absoluteTime } from "../time.js";

for (const node of qsa("time[data-local]")) {
  node.title = node.textContent;
  node.textContent = absoluteTime(node.dateTime);
}
